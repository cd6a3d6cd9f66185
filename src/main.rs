use clap::Parser;

fn main() -> std::process::ExitCode {
    netcheck::tls::install_crypto_provider();
    let cli = netcheck::cli::Cli::parse();
    let mut builder = match &cli.command {
        netcheck::cli::Command::Agent(args) => {
            // Before the runtime's threads exist: allocator settings apply to threads made later.
            netcheck::agent::memory::fewer_arenas();
            if args.threads == 1 {
                tokio::runtime::Builder::new_current_thread()
            } else {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(args.threads.into());
                b
            }
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder
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
