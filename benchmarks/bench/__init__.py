"""``tts-server bench``: latency and throughput of Together- and OpenAI-style speech endpoints.

Modules: ``cli`` (arguments), ``run`` (a whole run), ``load`` (closed and open loop), ``client``
(one timed request), ``wire`` (SSE), ``audio`` (durations from the bytes), ``stats``, ``server_view``
(``/metrics`` or ``/stats`` before and after), ``report`` and ``plots`` (outputs), ``engine_mode``
(in-process engine timing).
"""
