"""OpenAI's speech API on the same server: ``POST /v1/audio/speech`` told apart by its fields."""
