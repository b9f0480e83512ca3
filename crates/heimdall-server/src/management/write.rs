//! What a management write changed in the policy index, as a type.
//!
//! Every write handler returns `Result<Written, ApiError>`: its answer and
//! the [`IndexChange`] it made. The route table ([`RouteTable`]) registers a
//! POST, PUT or DELETE handler only if it has that return type
//! ([`DeclaresChange`]), so a write route that does not say what it changed
//! does not compile. `Written` travels to `router::reload_after_write` in the
//! response's extensions (as [`Declared`], which only `Written` makes); the
//! middleware applies it before the response leaves.
//!
//! The table also remembers every write route it registered
//! ([`write_routes`]), so that a test can walk them all.

use std::future::Future;

use axum::Router;
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on};

use crate::error::ApiError;
use crate::governance::IndexChange;
use crate::state::AppState;

/// A successful management write: its answer and what it changed in the
/// policy index.
#[must_use]
pub struct Written {
    change: IndexChange,
    response: Response,
}

impl Written {
    pub fn new(change: IndexChange, response: impl IntoResponse) -> Written {
        Written {
            change,
            response: response.into_response(),
        }
    }

    /// A write to templates or roles only: the index is untouched.
    pub fn nothing(response: impl IntoResponse) -> Written {
        Written::new(IndexChange::Nothing, response)
    }

    /// A write to one user's copies or keys.
    pub fn user(user_id: impl Into<String>, response: impl IntoResponse) -> Written {
        Written::new(IndexChange::Users(vec![user_id.into()]), response)
    }

    /// A write that may have changed many users.
    pub fn everything(response: impl IntoResponse) -> Written {
        Written::new(IndexChange::Everything, response)
    }
}

/// The change a [`Written`] declared, in its response's extensions.
#[derive(Debug, Clone)]
pub struct Declared(IndexChange);

impl Declared {
    pub fn change(&self) -> &IndexChange {
        &self.0
    }
}

impl IntoResponse for Written {
    fn into_response(self) -> Response {
        let mut resp = self.response;
        resp.extensions_mut().insert(Declared(self.change));
        resp
    }
}

/// Implemented by the async functions that return `Result<Written, ApiError>`
/// (with up to seven extractors): the only handlers [`RouteTable::write`]
/// accepts.
#[diagnostic::on_unimplemented(
    message = "a management write handler must return `Result<Written, ApiError>`",
    label = "this handler does not say what it changed in the policy index",
    note = "return `Written::user(..)`, `Written::nothing(..)` or `Written::everything(..)`"
)]
pub trait DeclaresChange<Args> {}

macro_rules! declares_change {
    ($($arg:ident),*) => {
        impl<F, Fut, $($arg,)*> DeclaresChange<($($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> Fut,
            Fut: Future<Output = Result<Written, ApiError>>,
        {
        }
    };
}

declares_change!();
declares_change!(T1);
declares_change!(T1, T2);
declares_change!(T1, T2, T3);
declares_change!(T1, T2, T3, T4);
declares_change!(T1, T2, T3, T4, T5);
declares_change!(T1, T2, T3, T4, T5, T6);
declares_change!(T1, T2, T3, T4, T5, T6, T7);

/// The methods of a write route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WriteMethod {
    Post,
    Put,
    Delete,
}

impl WriteMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMethod::Post => "POST",
            WriteMethod::Put => "PUT",
            WriteMethod::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            WriteMethod::Post => MethodFilter::POST,
            WriteMethod::Put => MethodFilter::PUT,
            WriteMethod::Delete => MethodFilter::DELETE,
        }
    }
}

/// The management routes under one prefix: reads (GET only) and writes
/// (POST, PUT, DELETE, each declaring its index change), with a record of
/// the writes.
pub struct RouteTable {
    prefix: String,
    router: Router<AppState>,
    writes: Vec<(WriteMethod, &'static str)>,
}

impl RouteTable {
    pub fn new(prefix: &str) -> RouteTable {
        RouteTable {
            prefix: prefix.to_string(),
            router: Router::new(),
            writes: Vec::new(),
        }
    }

    /// A GET route.
    pub fn read<H, T>(mut self, path: &'static str, handler: H) -> RouteTable
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self
            .router
            .route(&format!("{}{path}", self.prefix), get(handler));
        self
    }

    /// A write route; `handler` must return `Result<Written, ApiError>`.
    pub fn write<H, T, A>(
        mut self,
        method: WriteMethod,
        path: &'static str,
        handler: H,
    ) -> RouteTable
    where
        H: Handler<T, AppState> + DeclaresChange<A>,
        T: 'static,
    {
        self.router = self.router.route(
            &format!("{}{path}", self.prefix),
            on(method.filter(), handler),
        );
        self.writes.push((method, path));
        self
    }

    pub fn post<H, T, A>(self, path: &'static str, handler: H) -> RouteTable
    where
        H: Handler<T, AppState> + DeclaresChange<A>,
        T: 'static,
    {
        self.write(WriteMethod::Post, path, handler)
    }

    pub fn put<H, T, A>(self, path: &'static str, handler: H) -> RouteTable
    where
        H: Handler<T, AppState> + DeclaresChange<A>,
        T: 'static,
    {
        self.write(WriteMethod::Put, path, handler)
    }

    pub fn delete<H, T, A>(self, path: &'static str, handler: H) -> RouteTable
    where
        H: Handler<T, AppState> + DeclaresChange<A>,
        T: 'static,
    {
        self.write(WriteMethod::Delete, path, handler)
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }

    /// The write routes registered, as (method, path without the prefix).
    pub fn writes(&self) -> &[(WriteMethod, &'static str)] {
        &self.writes
    }
}

/// Every write route of the management API, as (method, path without the
/// prefix), exactly as `management::routes` registers them.
pub fn write_routes() -> Vec<(WriteMethod, &'static str)> {
    super::table("").writes().to_vec()
}
