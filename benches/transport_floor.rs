//! The transport floor: what merely receiving Twilio's media streams costs on
//! this machine, before Pronto does anything with them.
//!
//! `pronto bench` reports the server's CPU seconds per call-minute. Part of it
//! no code in Pronto's call path can remove: the kernel's socket and wakeup
//! work and the WebSocket stack reading 50 messages a second per call. This
//! measures that part alone. A server process with Pronto's stack (tokio's
//! multi-thread runtime, axum's upgrade, tokio-tungstenite, the same 4 KiB
//! read buffer) reads every message of N calls and throws it away, while this
//! process sends each call's 20 ms `media` messages in real time, as Twilio
//! does. Server and sender are pinned to separate cores, as in `pronto bench`.
//! With `--decode` the server also does the minimum any media server must:
//! parse the JSON and decode the base64 payload (Pronto's own parser). With
//! `--raw-tcp` there is no WebSocket at all: the same bytes every 20 ms over
//! plain TCP, read by a bare tokio task: the kernel's and the runtime's share.
//!
//! ```sh
//! cargo bench --bench transport_floor -- --calls 100 --secs 20
//! cargo bench --bench transport_floor -- --calls 100 --secs 20 --decode
//! cargo bench --bench transport_floor -- --calls 100 --secs 20 --raw-tcp
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::routing::get;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use pronto::bench::process::{pin_self, usage};
use pronto::twilio::media::{self, Inbound};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite;

/// Pronto's per-call WebSocket read buffer (`src/http/stream.rs`).
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Calls are connected before measuring; this long more lets them settle.
const SETTLE: Duration = Duration::from_secs(2);

struct Options {
    calls: usize,
    secs: u64,
    server_cpus: String,
    client_cpus: String,
    decode: bool,
    raw_tcp: bool,
    /// Internal: run as the server process.
    serve: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        calls: 100,
        secs: 20,
        server_cpus: "0".into(),
        client_cpus: "1".into(),
        decode: false,
        raw_tcp: false,
        serve: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--calls" => o.calls = value("--calls")?.parse()?,
            "--secs" => o.secs = value("--secs")?.parse()?,
            "--server-cpus" => o.server_cpus = value("--server-cpus")?,
            "--client-cpus" => o.client_cpus = value("--client-cpus")?,
            "--decode" => o.decode = true,
            "--raw-tcp" => o.raw_tcp = true,
            "--serve" => o.serve = true,
            // `cargo bench` passes `--bench`; nothing else is expected.
            "--bench" => {}
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(o)
}

fn main() -> anyhow::Result<()> {
    let o = options()?;
    if o.serve {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return rt.block_on(serve(&o));
    }
    let mut server = spawn_server(&o)?;
    let result = (|| {
        let port = read_port(&mut server)?;
        pin_self(&o.client_cpus).map_err(anyhow::Error::msg)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(send_calls(&o, port, server.id()))
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// Reads and discards (or, with `decode`, parses and decodes) every message.
async fn serve(o: &Options) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("PORT {}", listener.local_addr()?.port());
    if o.raw_tcp {
        return serve_raw_tcp(listener).await;
    }
    let decode = o.decode;
    let app = axum::Router::new().route(
        "/stream",
        get(move |ws: WebSocketUpgrade| async move {
            ws.read_buffer_size(READ_BUFFER_BYTES)
                .on_upgrade(move |socket| read_all(socket, decode))
        }),
    );
    axum::serve(listener, app).await?;
    Ok(())
}

async fn serve_raw_tcp(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    loop {
        let (mut socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buffer = vec![0u8; READ_BUFFER_BYTES];
            while let Ok(n @ 1..) = socket.read(&mut buffer).await {
                std::hint::black_box(n);
            }
        });
    }
}

async fn read_all(mut socket: axum::extract::ws::WebSocket, decode: bool) {
    let mut payload = Vec::with_capacity(160);
    let mut bytes = 0usize;
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        if !decode {
            bytes += text.len();
            continue;
        }
        if let Ok(parsed) = media::parse(text.as_str())
            && let Inbound::Media(m) = parsed.message
            && m.decode_into(&mut payload).is_ok()
        {
            bytes += payload.len();
        }
    }
    std::hint::black_box(bytes);
}

fn spawn_server(o: &Options) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &o.server_cpus]).arg(exe).arg("--serve");
    if o.decode {
        cmd.arg("--decode");
    }
    if o.raw_tcp {
        cmd.arg("--raw-tcp");
    }
    cmd.stdout(Stdio::piped())
        .spawn()
        .context("taskset (util-linux) starts the server")
}

fn read_port(server: &mut Child) -> anyhow::Result<u16> {
    let stdout = server.stdout.take().context("the server's stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    line.trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("the server said {line:?}, not its port"))
}

/// A `media` message as Twilio sends it: 160 bytes of μ-law silence.
fn media_message(stream_sid: &str, chunk: u64) -> String {
    let payload = base64::engine::general_purpose::STANDARD.encode([0xFFu8; 160]);
    serde_json::json!({
        "event": "media",
        "sequenceNumber": (chunk + 2).to_string(),
        "media": {
            "track": "inbound",
            "chunk": chunk.to_string(),
            "timestamp": (chunk * 20).to_string(),
            "payload": payload,
        },
        "streamSid": stream_sid,
    })
    .to_string()
}

async fn send_calls(o: &Options, port: u16, server_pid: u32) -> anyhow::Result<()> {
    let url = format!("ws://127.0.0.1:{port}/stream");
    let length = SETTLE + Duration::from_secs(o.secs) + Duration::from_secs(1);
    let mut calls = Vec::new();
    for i in 0..o.calls {
        let connection = if o.raw_tcp {
            Connection::Tcp(tokio::net::TcpStream::connect(("127.0.0.1", port)).await?)
        } else {
            let (socket, _) = tokio_tungstenite::connect_async(&url)
                .await
                .with_context(|| format!("call {i} connects"))?;
            Connection::WebSocket(Box::new(socket))
        };
        // Spread the calls over the 20 ms frame period, as real calls are.
        let offset = Duration::from_micros((i as u64 * 20_000 / o.calls.max(1) as u64) % 20_000);
        calls.push(tokio::spawn(stream_call(connection, i, offset, length)));
    }
    tokio::time::sleep(SETTLE).await;
    let before = usage(server_pid).context("the server's /proc")?;
    tokio::time::sleep(Duration::from_secs(o.secs)).await;
    let after = usage(server_pid).context("the server's /proc")?;
    let call_minutes = o.calls as f64 * o.secs as f64 / 60.0;
    let cpu = after.cpu_secs - before.cpu_secs;
    println!(
        "{} calls for {} s{}: server CPU {cpu:.2} s, {:.4} CPU-s per call-minute",
        o.calls,
        o.secs,
        match (o.raw_tcp, o.decode) {
            (true, _) => ", raw TCP",
            (false, true) => ", parse + decode",
            (false, false) => ", read and discard",
        },
        cpu / call_minutes
    );
    for call in calls {
        call.await??;
    }
    Ok(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

enum Connection {
    WebSocket(Box<Socket>),
    Tcp(tokio::net::TcpStream),
}

async fn stream_call(
    mut connection: Connection,
    index: usize,
    offset: Duration,
    length: Duration,
) -> anyhow::Result<()> {
    tokio::time::sleep(offset).await;
    let stream_sid = format!("MZ{index:032x}");
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let frames = length.as_millis() as u64 / 20;
    for chunk in 1..=frames {
        tick.tick().await;
        let message = media_message(&stream_sid, chunk);
        match &mut connection {
            Connection::WebSocket(socket) => {
                socket.send(tungstenite::Message::text(message)).await?
            }
            Connection::Tcp(stream) => stream.write_all(message.as_bytes()).await?,
        }
    }
    match &mut connection {
        Connection::WebSocket(socket) => socket.as_mut().close(None).await?,
        Connection::Tcp(stream) => stream.shutdown().await?,
    }
    Ok(())
}
