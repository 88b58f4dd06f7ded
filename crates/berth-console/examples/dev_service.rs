// TEMPORARY (not committed): serves the console router over plain HTTP for checking pages against a real berth.
#[tokio::main]
async fn main() {
    let endpoint = std::env::var("DEV_ENDPOINT").expect("DEV_ENDPOINT");
    let ca = std::fs::read(std::env::var("DEV_CA").expect("DEV_CA")).expect("ca");
    let config = berth_console::ConsoleConfig {
        api: berth_client::Settings { endpoint, region: "us-east-1".into(), ca_pem: Some(ca) },
        origin: "http://127.0.0.1:38999".into(),
        session_ttl: std::time::Duration::from_secs(3600),
    };
    let state = berth_console::AppState::new(config).expect("state");
    let app = berth_console::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:38999").await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
