"""Text alternatives and computed sentences of the attention page's two tabs beyond the weight: the joint map of
queries and keys (`QueryKeyMap`) and what each attended token contributes (`Contributions`), each from the very
result its picture or chart draws."""
from __future__ import annotations

import numpy as np

from ..attention_qk import Contributions, QueryKeyMap
from ..i18n import _, sentences
from .attention import _listing
from .common import describe_distribution, percent

RATIO = 2.0  # a token is said to take much more (or less) than its weight suggests beyond this factor of shares


def _tokens(view: QueryKeyMap, tokens: np.ndarray) -> str:
    return _listing([view.layout.label(int(j)) for j in tokens])


def query_key_map(view: QueryKeyMap, colour: str) -> str:
    """The scatter of every query and key of one head: what it keeps, the selected query's neighbours and weights."""
    t = view.tokens
    return sentences(
        _("Layer {layer}, head {head}: the {t} queries (circles) and {t} keys (diamonds) of this image in one picture, "
          "after the keys were moved to the queries' centre and both scaled to the same mean length; the two axes "
          "keep {variance} of their variance. Colour: {colour}.").format(
            layer=view.layer + 1, head=view.head + 1, t=t, variance=percent(view.variance), colour=colour),
        _("Lines join the query {token} to its {k} largest weights: {weights}.").format(
            token=view.layout.label(view.query), k=len(view.top), weights=_listing(
                [f"{view.layout.label(int(j))} {percent(w)}" for j, w in zip(view.top, view.weights)])),
        _("Its {k} nearest keys in the picture are {near}; {agree} of them are among those largest weights.").format(
            k=len(view.nearest), near=_tokens(view, view.nearest), agree=view.agree),
        faithfulness(view))


def faithfulness(view: QueryKeyMap) -> str:
    """How faithful the picture is, over all queries of the head, against chance and before the projection."""
    return _("Over all queries of this head, {share} of the nearest keys in the picture are true top keys (a random "
             "picture: {chance}; the same count in the head's full space, before the projection: {full}).").format(
        share=percent(view.faithfulness[view.head]), chance=percent(view.chance),
        full=percent(view.faithfulness_full[view.head]))


def _where(c: Contributions, values: np.ndarray, what: str) -> str:
    return describe_distribution(c.on_grid(values), what)


def _off_image(c: Contributions, values: np.ndarray) -> str:
    """What CLS and the registers hold of a per-token quantity, as shares of its sum."""
    share, pre = values / values.sum(), c.layout.prefix
    if pre > 1:
        return _("Off the image: CLS {cls}, the registers {registers}.").format(
            cls=percent(share[0]), registers=percent(share[1:pre].sum()))
    return _("Off the image: CLS {cls}.").format(cls=percent(share[0]))


def _query(c: Contributions) -> str:
    return _("Layer {layer}, query {token}").format(layer=c.layer + 1, token=c.layout.label(c.query))


def weight_map(c: Contributions) -> str:
    """The layer's attention weight of the query (mean of the heads) over the patches."""
    return sentences(_("{query}, weight averaged over the heads: {distribution}.").format(
        query=_query(c), distribution=_where(c, c.weight, _("the patch weight"))), _off_image(c, c.weight))


def contribution_map(c: Contributions) -> str:
    """The norm of what each token adds to the query's output, over the patches."""
    return sentences(_("{query}, length of what each token adds, summed over the heads: {distribution}.").format(
        query=_query(c), distribution=_where(c, c.contribution, _("the patch contribution"))),
        _off_image(c, c.contribution))


def value_map(c: Contributions) -> str:
    """The head's ‖f_h(x_j)‖ over the patches: what each token would add at weight 1."""
    patches = c.value_norm[c.layout.prefix:]
    return sentences(
        _("Layer {layer}, head {head}, length of each token's transformed value: {distribution}.").format(
            layer=c.layer + 1, head=c.head + 1, distribution=_where(c, c.value_norm, _("the length"))),
        _("Patches from {low:.3g} to {high:.3g}; CLS {cls:.3g}.").format(
            low=float(patches.min()), high=float(patches.max()), cls=float(c.value_norm[0])))


def share_map(c: Contributions) -> str:
    """Every token's share of the layer's attention output over all queries."""
    return sentences(_("Layer {layer}, all queries: each token's share of the attention output, {distribution}.").format(
        layer=c.layer + 1, distribution=_where(c, c.share, _("the output"))), _off_image(c, c.share))


def _mismatch(c: Contributions, token: int) -> str:
    weight, taken = c.weight_share[token], c.contribution_share[token]
    return _("{token} gets {weight} of the weight and gives {taken} of the contribution").format(
        token=c.layout.label(token), weight=percent(weight), taken=percent(taken))


def disagreement(c: Contributions) -> str:
    """Spearman's ρ of weight and contribution, and where they disagree most for this query (shown under the maps)."""
    strength = (_("they rank the tokens much alike") if c.rho >= 0.8 else
                _("they rank the tokens only partly alike") if c.rho >= 0.4 else _("they rank the tokens differently"))
    over, under = c.overrated, c.underrated
    parts = [_("Rank correlation of weight and contribution over the {t} tokens: ρ = {rho:.2f} ({strength}); in head "
               "{head} alone ρ = {head_rho:.2f}.").format(t=len(c.weight), rho=c.rho, strength=strength,
                                                          head=c.head + 1, head_rho=c.head_rho)]
    if c.weight_share[over] > RATIO * c.contribution_share[over]:
        parts.append(_("Looked at, little taken: {token}.").format(token=_mismatch(c, over)))
    if c.contribution_share[under] > RATIO * c.weight_share[under]:
        parts.append(_("Taken more than looked at: {token}.").format(token=_mismatch(c, under)))
    return sentences(*parts)


def layer_sentence(c: Contributions) -> str:
    """Over all queries of the layer: what CLS, the registers and the patches receive against what they give."""
    pre = c.layout.prefix
    groups = [("CLS", slice(0, 1))] + ([(_("the registers"), slice(1, pre))] if pre > 1 else [])
    groups.append((_("the patches"), slice(pre, None)))
    return _("Over all {t} queries of layer {layer}: {groups}.").format(
        t=len(c.share), layer=c.layer + 1, groups=_listing([
            _("{what}: {received} of the attention received, {given} of the output given").format(
                what=what, received=percent(c.received[part].sum()), given=percent(c.share[part].sum()))
            for what, part in groups]))
