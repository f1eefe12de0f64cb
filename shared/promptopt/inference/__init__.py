"""Inference: render a prompt and call a model (`complete`), errors mapped to API errors.

`promptopt.inference.complete` is imported by the endpoint; provider SDKs load only when a model
of their kind is called (google-genai for `gemini:*`, httpx for `openai:*`). The API errors live in
promptopt.inference.errors; this package imports nothing itself, so that request schemas importing
promptopt.inference.models do not load the model error types (cold start).
"""
