use clap::Parser;

fn main() -> std::process::ExitCode {
    netcheck::tls::install_crypto_provider();
    let cli = netcheck::cli::Cli::parse();
    // Before the runtime's threads exist: allocator settings apply to threads made later.
    if matches!(cli.command, netcheck::cli::Command::Agent(_)) {
        netcheck::agent::memory::fewer_arenas();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts");
    match runtime.block_on(netcheck::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
