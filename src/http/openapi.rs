//! `GET /api/openapi.json`: the OpenAPI document of every `/api` route,
//! generated from the handlers' annotations and the response types, so it
//! cannot drift from the code.

use axum::Json;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{api, calls};

#[derive(OpenApi)]
#[openapi(
    info(title = "Pronto API", description = "Call status, history and outbound calls. Every route needs `Authorization: Bearer $API_TOKEN`."),
    paths(api::status, calls::list, calls::one, calls::erase, calls::recording, calls::create),
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
    }
}

pub async fn document() -> Response {
    Json(ApiDoc::openapi()).into_response()
}
