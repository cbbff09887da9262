"""canopylabs/orpheus-3b-0.1-ft: a Llama-3B LM that speaks SNAC 24 kHz codes, batched across requests."""
