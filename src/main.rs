use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    netcheck::tls::install_crypto_provider();
    let cli = netcheck::cli::Cli::parse();
    match netcheck::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
