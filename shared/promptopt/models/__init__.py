"""API and domain schemas (pydantic). Request models reject unknown fields."""
