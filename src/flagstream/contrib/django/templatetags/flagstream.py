"""``{% load flagstream %}``: branch a template on a flag for the request's user.

    {% ifflag "new_checkout" %}  new  {% else %}  old  {% endifflag %}
    {% ifflag "checkout_test" "treatment" %}  the treatment  {% endifflag %}
    {% flag_decision "new_checkout" as decision %}{{ decision.variables.title }}

The user is ``request.flagstream`` (``FlagstreamMiddleware``), so the template
needs ``request`` in its context (the ``django.template.context_processors.request``
context processor). Each tag decides once, which sends the impression as
``decide`` does. Without a user context the tag renders its ``else`` branch and
logs one line: a template never fails because of a flag.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.template.base import FilterExpression, NodeList, Parser, Token
from django.template.context import Context

from flagstream._logging import SDK_LOGGER
from flagstream.decide import OptimizelyDecision

register = template.Library()


def _decide(context: Context, flag_key: object) -> OptimizelyDecision | None:
    request = context.get("request")
    user = getattr(request, "flagstream", None) if request is not None else None
    if user is None:
        SDK_LOGGER.warning(
            "flagstream: {%% ifflag %%} / {%% flag_decision %%} found no request.flagstream for %r "
            "(add FlagstreamMiddleware and the request context processor)",
            flag_key,
        )
        return None
    if not isinstance(flag_key, str):
        SDK_LOGGER.error("flagstream: the flag key in a template tag must be a string, not %r", flag_key)
        return None
    decision: OptimizelyDecision = user.decide(flag_key)
    return decision


@register.simple_tag(takes_context=True)  # type: ignore[untyped-decorator]
def flag_decision(context: Context, flag_key: str) -> OptimizelyDecision | None:
    """The request user's decision for ``flag_key`` (``None`` without a user context)."""
    return _decide(context, flag_key)


class IfFlagNode(template.Node):  # type: ignore[misc]
    """Renders the first branch when the flag is on (and, if given, the variation matches)."""

    def __init__(
        self,
        flag_key: FilterExpression,
        variation_key: FilterExpression | None,
        nodelist_true: NodeList,
        nodelist_false: NodeList,
    ) -> None:
        self.flag_key = flag_key
        self.variation_key = variation_key
        self.nodelist_true = nodelist_true
        self.nodelist_false = nodelist_false

    def render(self, context: Context) -> Any:
        decision = _decide(context, self.flag_key.resolve(context))
        matched = decision is not None and decision.enabled
        if matched and self.variation_key is not None:
            assert decision is not None
            matched = decision.variation_key == self.variation_key.resolve(context)
        return (self.nodelist_true if matched else self.nodelist_false).render(context)


@register.tag("ifflag")  # type: ignore[untyped-decorator]
def do_ifflag(parser: Parser, token: Token) -> IfFlagNode:
    """``{% ifflag "flag" ["variation"] %} ... [{% else %} ...] {% endifflag %}``."""
    bits = token.split_contents()
    if len(bits) not in (2, 3):
        raise template.TemplateSyntaxError(
            f'{bits[0]} takes a flag key and an optional variation key: {{% ifflag "flag" ["variation"] %}}'
        )
    flag_key = parser.compile_filter(bits[1])
    variation_key = parser.compile_filter(bits[2]) if len(bits) == 3 else None
    nodelist_true = parser.parse(("else", "endifflag"))
    token = parser.next_token()
    if token.contents == "else":
        nodelist_false = parser.parse(("endifflag",))
        parser.delete_first_token()
    else:
        nodelist_false = NodeList()
    return IfFlagNode(flag_key, variation_key, nodelist_true, nodelist_false)
