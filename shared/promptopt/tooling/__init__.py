"""Developer tooling (bundle builder, OpenAPI generator): never bundled into a function."""
