//! Connect, write, read and scan.
//!
//! ```sh
//! cargo run -p ferrisdb-client --example basic -- 127.0.0.1:7000 ca.pem client.pem client.key
//! cargo run -p ferrisdb-client --example basic -- 127.0.0.1:7000   # a node started with --insecure
//! ```

use ferrisdb_client::{Client, ClientConfig, ScanOptions, Security};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let endpoint = args
        .first()
        .map_or("127.0.0.1:7000", String::as_str)
        .parse()?;
    let security = match &args[1..] {
        [ca, cert, key] => Security::MutualTls {
            ca_cert: ca.into(),
            cert: cert.into(),
            key: key.into(),
        },
        _ => Security::Insecure,
    };
    let client = Client::connect(ClientConfig::new(vec![endpoint], security)).await?;

    for i in 0..10 {
        client
            .put(format!("example:{i:02}"), format!("value {i}"))
            .await?;
    }
    let value = client.get("example:03").await?;
    println!("example:03 = {:?}", value.map(String::from_utf8));

    let mut scan = client.scan(ScanOptions::range("example:", "example;").limit(5))?;
    while let Some(entry) = scan.next().await? {
        println!(
            "{} = {}",
            String::from_utf8_lossy(&entry.key),
            String::from_utf8_lossy(&entry.value)
        );
    }
    Ok(())
}
