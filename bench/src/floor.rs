//! The floor: the thinnest reverse proxy worth comparing a gateway with
//! (performance.md). HTTP/1.1 in, one pooled keep-alive hyper client out,
//! request and response bodies streamed through frame by frame, nothing
//! parsed or rewritten except the request URI's authority. Whatever Heimdall
//! adds beyond this is the cost of being a gateway rather than a proxy.
//!
//! It runs as its own process (`heimdall-bench floor`) so that its CPU time
//! and memory can be read from `/proc` exactly as the gateway's are.

use std::net::SocketAddr;

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Upstream = Client<HttpConnector, Incoming>;
type Body = Either<Incoming, Empty<Bytes>>;

async fn forward(
    client: Upstream,
    upstream: Authority,
    req: Request<Incoming>,
) -> Result<Response<Body>, http::Error> {
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    parts.uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(upstream)
        .path_and_query(path)
        .build()?;
    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => Ok(resp.map(Either::Left)),
        Err(_) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Either::Right(Empty::new())),
    }
}

/// Serves on `listen`, forwarding everything to `upstream`, until killed.
pub async fn serve(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(4096)
        .build(connector);
    let authority: Authority = upstream.to_string().parse()?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (client, authority) = (client.clone(), authority.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| forward(client.clone(), authority.clone(), req));
            // a client that goes away mid-request is not the floor's problem
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
