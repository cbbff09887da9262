"""Together's realtime text-to-speech websocket (``GET /v1/audio/speech/websocket``)."""
