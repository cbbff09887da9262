"""``cartesia/sonic``: a streaming proxy to Cartesia's own TTS API, paid for with the operator's key.

* :mod:`.mapping` turns a Together request into Cartesia's request body.
* :mod:`.voices` resolves Together voice names to Cartesia voice UUIDs.
* :mod:`.client` talks HTTP to Cartesia; :mod:`.sse` and :mod:`.upstream_errors` read its answers.
* :mod:`.engine` ties them into the :class:`engines.base.Engine` contract.
"""
