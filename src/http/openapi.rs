//! `GET /api/openapi.json`: the OpenAPI document of every `/api` route,
//! generated from the handlers' annotations and the response types, so it
//! cannot drift from the code.

use axum::Json;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{agents, api, auth, calls, live, test_call};

#[derive(OpenApi)]
#[openapi(
    info(title = "Pronto API", description = "Call status, history, outbound calls and the dashboard's live view. Every route but `/api/session` needs `Authorization: Bearer $API_TOKEN`, or the dashboard's session cookie (`POST /api/session`) with a same-origin `Origin` on anything that changes something and on every WebSocket upgrade."),
    paths(api::status, api::overview, calls::list, calls::one, calls::erase, calls::recording,
        calls::create, calls::export_csv, calls::export_json, auth::sign_in, auth::current,
        auth::sign_out, live::events, live::listen, live::hang_up, live::transfer, live::say,
        test_call::create, test_call::stream, agents::list, agents::one, agents::reload),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("pronto_session"))),
        );
    }
}

pub async fn document() -> Response {
    Json(ApiDoc::openapi()).into_response()
}
