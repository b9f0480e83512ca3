//! Runs the provider conformance suite for every kind against the mock provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heimdall_testkit::mock::{MockHandle, MockOptions, MockProvider};

async fn mock() -> (MockHandle, String) {
    let h = MockProvider::start(MockOptions::default()).await.unwrap();
    let url = h.base_url.clone();
    (h, url)
}

heimdall_providers::provider_conformance!(
    openai_kind,
    heimdall_providers::ProviderKind::OpenAi,
    crate::mock()
);
heimdall_providers::provider_conformance!(
    anthropic_kind,
    heimdall_providers::ProviderKind::Anthropic,
    crate::mock()
);
