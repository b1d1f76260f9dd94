"""The per-call paths of the client, compiled in the mypyc build.

The client classes stay interpreted (optimizely-sdk's mixin layout, which
mypyc compiles only as non-native classes); what a ``decide`` and its
impression run on each call lives here in native classes the client builds
once: :mod:`flagstream.calls.shared` (event contexts, typed variable values,
handing an event to the processor) and :mod:`flagstream.calls.decide` (a
user context in, an ``OptimizelyDecision`` out).
"""
