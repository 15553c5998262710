//! Connections that send nothing, or headers a line at a time, must not be able to take a server
//! down: before, 1,100 idle sockets exhausted the common 1,024 open-file limit. Now a request's
//! headers have a deadline (which also closes idle keep-alive connections) and open connections
//! are capped below the open-file limit, so new requests are still answered.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::process::{Server, environment, free_port};

const IDLE: usize = 2000;

async fn healthz(address: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_sockets_do_not_stop_new_requests() {
    // This test holds 2,000 sockets itself.
    rlimit::increase_nofile_limit(8192).unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let env = environment(data.path(), port, "http://127.0.0.1:9");
    let server = Server::start_with_file_limit(&env, data.path().join("serve.log"), 1024).await;

    let mut idle = Vec::with_capacity(IDLE);
    let mut trickling = Vec::new();
    for n in 0..IDLE {
        let connect = TcpStream::connect(&address);
        // Some time out while the listen queue is full: that is the point.
        if let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_millis(200), connect).await
        {
            // A tenth send headers one line at a time, and never finish them.
            if n % 10 == 0 {
                let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\n").await;
                trickling.push(stream);
            } else {
                idle.push(stream);
            }
        }
    }
    eprintln!(
        "holding {} idle and {} trickling sockets",
        idle.len(),
        trickling.len()
    );
    assert!(
        idle.len() + trickling.len() > 1100,
        "the flood got through to the server"
    );

    let started = Instant::now();
    let mut answered = None;
    while started.elapsed() < Duration::from_secs(30) {
        for stream in &mut trickling {
            let _ = stream.write_all(b"X-Slow: 1\r\n").await;
        }
        match tokio::time::timeout(Duration::from_secs(3), healthz(&address)).await {
            Ok(Ok(answer)) if answer.starts_with("HTTP/1.1 200") => {
                answered = Some(started.elapsed());
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let waited = answered.expect("a new request was answered while the idle sockets were held");
    eprintln!("a new request was answered after {waited:?}");

    // The server lives on, and idle sockets were closed by it, not by us.
    let mut closed = 0;
    for stream in idle.iter_mut().take(200) {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert!(
        closed > 0,
        "the server closes connections that send nothing"
    );
    let answer = healthz(&address).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(idle);
    drop(trickling);
    server.stop().await;
}
