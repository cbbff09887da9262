"""PCM conversion, resampling and container encoding for the HTTP responses."""

from server.audio.writer import AudioWriter, CONTENT_TYPES, check_output_supported

__all__ = ["AudioWriter", "CONTENT_TYPES", "check_output_supported"]
