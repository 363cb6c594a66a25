"""Loudness-augmented mixtures made from a batch of clips (the reference recipe, seeded).

For batch item ``n`` the target is ``audio[n]`` and the backgrounds are the following items,
cyclically (``n+1, n+2, ...``). Each background is rescaled to the target's energy (mean square)
and multiplied by a random integer gain in ``[lower_db, higher_db]`` dB; their sum is rescaled to
the target's energy again and multiplied by a second random integer gain. The mixture is target +
background; where its peak exceeds 1, target and background are both scaled so that the mixture
peaks at ``declip_peak``. All randomness comes from the injected generator.

With ``distinct_captions=True`` the following items are scanned cyclically and those whose caption
equals the target's (ignoring case and surrounding spaces) or that share a label with it are
skipped. If fewer than ``sources_per_mixture - 1`` items qualify, the mixture uses the ones that do
-- possibly none, in which case the mixture is the target alone (still a well-posed example) --
unless ``strict_distinct=True``, which raises instead.

With ``paired=True`` (two sources per mixture only) the batch is split into pairs ``(a, b)`` and
each pair makes **one** mixture that serves both items: item ``a`` asks for ``a`` and item ``b``
asks for the same mixture's other source. The same input with two queries and two different
targets is the direct lesson in following the query (the "query swap"); the cyclic recipe never
shows one mixture with two queries. Pairs are chosen greedily in batch order (each item with the
next free one; with ``distinct_captions`` the next free one of a different caption and labels);
an item left without a partner is mixed the ordinary way.

Closer to real use (all off by default, and then no extra random numbers are drawn, so the
reference mixtures stay bit for bit the same):

* ``max_sources``: item ``n`` uses its first ``c_n - 1`` backgrounds, ``c_n`` drawn uniformly from
  ``sources_per_mixture..max_sources``;
* ambiences (``ambience_probability``): with that probability an ambience clip (rain, wind,
  crowd, traffic, ...; passed in as ``ambience``) is scaled to the target's energy times a random
  integer gain in ``[ambience_lower_db, ambience_higher_db]`` dB and added to the item's
  backgrounds, before the background sum is set to its drawn level. Item ``n`` takes the first
  ambience clip, cyclically from ``n``, that shares no label with it; none: no ambience.

Either way the target-to-background energy ratio is ``-background_db``, an integer in
``[-higher_db, -lower_db]`` (the reference range -10..+10 dB), whatever the number of sources.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from .config import MixConfig

ENERGY_EPS = 1e-10  # energies are floored at this before dividing (silent clips stay silent)


@dataclass(frozen=True)
class Mixture:
    """Mixtures and their parts; ``mixture == target + background`` exactly.

    Attributes
    ----------
    mixture : Tensor[B, 1, T]
    target : Tensor[B, 1, T]
    background : Tensor[B, 1, T]
        The scaled sum of the background clips (zeros where an item has none).
    background_db : Tensor[B]
        The final integer gain (dB) of the background relative to the target energy
        (drawn for every item; meaningless where an item has no backgrounds).
    background_indices : tuple of tuple of int
        For each item, the batch indices used as its backgrounds.
    """

    mixture: Tensor
    target: Tensor
    background: Tensor | None = None
    background_db: Tensor | None = None
    background_indices: tuple[tuple[int, ...], ...] = ()


def _norm(text: str) -> str:
    return text.strip().casefold()


def _compatibility(
    batch_size: int,
    captions: Sequence[str] | None,
    labels: Sequence[Sequence[str]] | None,
) -> Callable[[int, int], bool]:
    """``compatible(n, m)``: items ``n`` and ``m`` differ in caption (case and surrounding spaces
    ignored) and share no label -- the ``distinct_captions`` rule."""
    if captions is None and labels is None:
        raise ValueError("MixConfig.distinct_captions needs the captions and/or labels; pass them to mix_batch")
    for name, seq in (("captions", captions), ("labels", labels)):
        if seq is not None and len(seq) != batch_size:
            raise ValueError(f"{name} has {len(seq)} entries for a batch of {batch_size}; pass one per item")
    caps = [_norm(c) for c in captions] if captions is not None else None
    labs = [{_norm(x) for x in ls} for ls in labels] if labels is not None else None

    def compatible(n: int, m: int) -> bool:
        if caps is not None and caps[n] == caps[m]:
            return False
        return not (labs is not None and labs[n] & labs[m])

    return compatible


def choose_backgrounds(
    batch_size: int,
    config: MixConfig,
    captions: Sequence[str] | None = None,
    labels: Sequence[Sequence[str]] | None = None,
) -> tuple[tuple[int, ...], ...]:
    """Batch indices of each item's backgrounds (following items, cyclically).

    Returns
    -------
    tuple of tuple of int
        ``B`` tuples of at most ``most_sources - 1`` indices (``max_sources`` when set, else
        ``sources_per_mixture``), never the item itself; :func:`mix_batch` uses a drawn number
        of them.
    """
    k = config.most_sources - 1
    if not config.distinct_captions:
        if batch_size < k + 1:
            raise ValueError(
                f"a batch of {batch_size} cannot give {k} background(s) per item without reusing the target; "
                f"use a batch size of at least {k + 1} or lower "
                f"MixConfig.{'max_sources' if config.max_sources else 'sources_per_mixture'}"
            )
        return tuple(tuple((n + j) % batch_size for j in range(1, k + 1)) for n in range(batch_size))
    compatible = _compatibility(batch_size, captions, labels)
    chosen = []
    for n in range(batch_size):
        picks = []
        for j in range(1, batch_size):
            m = (n + j) % batch_size
            if not compatible(n, m):
                continue
            picks.append(m)
            if len(picks) == k:
                break
        if len(picks) < config.sources_per_mixture - 1 and config.strict_distinct:
            raise ValueError(
                f"batch item {n} ({captions[n] if captions is not None else labels[n]!r}) has only {len(picks)} "
                f"background(s) with a different caption and labels, {config.sources_per_mixture - 1} needed; "
                "use larger or more varied "
                "batches, or set MixConfig.strict_distinct=False to mix with fewer"
            )
        chosen.append(tuple(picks))
    return tuple(chosen)


def choose_pairs(
    batch_size: int,
    config: MixConfig,
    captions: Sequence[str] | None = None,
    labels: Sequence[Sequence[str]] | None = None,
) -> tuple[tuple[int, int], ...]:
    """Disjoint pairs ``(a, b)``, ``a < b``, of batch items that share one mixture (greedy, in batch order).

    Each free item takes the next free item (with ``distinct_captions``: the next free one whose
    caption differs and that shares no label). Items in no pair are mixed the ordinary way.
    """
    compatible = _compatibility(batch_size, captions, labels) if config.distinct_captions else None
    free = list(range(batch_size))
    pairs = []
    while free:
        a = free.pop(0)
        for pos, b in enumerate(free):
            if compatible is None or compatible(a, b):
                pairs.append((a, free.pop(pos)))
                break
    return tuple(pairs)


def _energy(x: Tensor) -> Tensor:
    return x.pow(2).mean(dim=(-2, -1))


def choose_ambience(labels: Sequence[Sequence[str]], ambience_labels: Sequence[Sequence[str]]) -> list[int | None]:
    """For each item, the first ambience clip (cyclically from the item's index) that shares no
    label with it (case and surrounding spaces ignored), or None."""
    amb = [{_norm(x) for x in ls} for ls in ambience_labels]
    out: list[int | None] = []
    for n, ls in enumerate(labels):
        own = {_norm(x) for x in ls}
        order = [(n + j) % len(amb) for j in range(len(amb))]
        out.append(next((a for a in order if not own & amb[a]), None))
    return out


def _ambience(audio: Tensor, e_target: Tensor, config: MixConfig, generator: torch.Generator,
              labels: Sequence[Sequence[str]] | None, ambience: Tensor | None,
              ambience_labels: Sequence[Sequence[str]] | None) -> Tensor:
    """The ambience part of each item's background: Tensor[B, C, T] (zeros where none is used)."""
    batch = audio.shape[0]
    if ambience is None or ambience_labels is None or labels is None:
        raise ValueError("MixConfig.ambience_probability > 0 needs ambience clips, their labels and the batch's "
                         "labels; pass ambience, ambience_labels and labels to mix_batch")
    if ambience.ndim != 3 or ambience.shape[0] < 1 or ambience.shape[1:] != audio.shape[1:]:
        raise ValueError(f"ambience must be Tensor[A, {audio.shape[1]}, {audio.shape[2]}] with A >= 1, "
                         f"got shape {tuple(ambience.shape)}")
    if len(ambience_labels) != ambience.shape[0] or len(labels) != batch:
        raise ValueError(f"labels has {len(labels)} entries for a batch of {batch} and ambience_labels "
                         f"{len(ambience_labels)} for {ambience.shape[0]} ambience clips; pass one per clip")
    use = torch.rand(batch, generator=generator, device=generator.device) < config.ambience_probability
    gain = torch.randint(config.ambience_lower_db, config.ambience_higher_db + 1, (batch,),
                         generator=generator, device=generator.device)
    picks = choose_ambience(labels, ambience_labels)
    on = torch.tensor([bool(u) and p is not None for u, p in zip(use.tolist(), picks)], device=audio.device)
    index = torch.tensor([p or 0 for p in picks], dtype=torch.long, device=audio.device)
    clips = ambience.to(audio.device, audio.dtype)[index]  # [B, C, T]
    scale = torch.sqrt(e_target / _energy(clips).clamp_min(ENERGY_EPS))
    scale = scale * torch.pow(10.0, gain.to(audio.device, audio.dtype) / 20.0) * on
    return clips * scale[:, None, None]


def mix_batch(
    audio: Tensor,
    config: MixConfig,
    generator: torch.Generator,
    captions: Sequence[str] | None = None,
    labels: Sequence[Sequence[str]] | None = None,
    ambience: Tensor | None = None,
    ambience_labels: Sequence[Sequence[str]] | None = None,
) -> Mixture:
    """Make one mixture per batch item (see the module docstring).

    Parameters
    ----------
    audio : Tensor[B, 1, T]
        Clean clips (any channel count ``C`` works; energies are over channels and time).
    config : MixConfig
    generator : torch.Generator
        The only source of randomness; it draws ``B * (config.most_sources - 1) + B`` integers,
        then ``B`` source counts with ``max_sources``, then ``B`` uniforms and ``B`` gains with
        ambiences.
    captions : sequence of str, optional
    labels : sequence of sequence of str, optional
        Needed with ``config.distinct_captions``; ``labels`` also with ambiences.
    ambience : Tensor[A, 1, T], optional
        Ambience clips (``A >= 1``), used when ``config.ambience_probability > 0``.
    ambience_labels : sequence of sequence of str, optional
        The labels of each ambience clip (``A`` entries).

    Returns
    -------
    Mixture
        ``mixture``, ``target`` and ``background`` are ``Tensor[B, 1, T]``.
    """
    if audio.ndim != 3:
        raise ValueError(f"mix_batch expects audio as Tensor[B, 1, T], got shape {tuple(audio.shape)}")
    batch = audio.shape[0]
    k = config.most_sources - 1
    chosen = choose_backgrounds(batch, config, captions, labels)

    # the draws never depend on the data, so the same generator state gives the same gains
    high = config.higher_db + 1
    gains = torch.randint(config.lower_db, high, (batch, k), generator=generator, device=generator.device)
    total = torch.randint(config.lower_db, high, (batch,), generator=generator, device=generator.device)
    gains, total = gains.to(audio.device), total.to(audio.device)
    if config.max_sources is not None:  # backgrounds per item: c_n - 1, c_n in [sources_per_mixture, max_sources]
        counts = torch.randint(config.sources_per_mixture - 1, config.max_sources, (batch,),
                               generator=generator, device=generator.device).tolist()
        chosen = tuple(picks[:c] for picks, c in zip(chosen, counts))

    index = torch.zeros(batch, k, dtype=torch.long)
    mask = torch.zeros(batch, k, dtype=torch.bool)
    for n, picks in enumerate(chosen):
        index[n, : len(picks)] = torch.tensor(picks, dtype=torch.long)
        mask[n, : len(picks)] = True
    index, mask = index.to(audio.device), mask.to(audio.device)

    target = audio
    e_target = _energy(target)  # [B]
    sources = audio[index]  # [B, k, C, T]
    scale = torch.sqrt(e_target[:, None] / _energy(sources).clamp_min(ENERGY_EPS))
    scale = scale * torch.pow(10.0, gains.to(audio.dtype) / 20.0) * mask
    background = (sources * scale[..., None, None]).sum(dim=1)  # [B, C, T]
    if config.ambience_probability > 0:
        background = background + _ambience(audio, e_target, config, generator, labels, ambience, ambience_labels)
    scale = torch.sqrt(e_target / _energy(background).clamp_min(ENERGY_EPS))
    scale = scale * torch.pow(10.0, total.to(audio.dtype) / 20.0)
    background = background * scale[:, None, None]

    if config.paired:
        target, background, chosen = target.clone(), background.clone(), list(chosen)
        for a, b in choose_pairs(batch, config, captions, labels):
            # b at the pair's gain relative to a's energy; the mixture a + b serves both items
            gain = torch.sqrt(e_target[a] / e_target[b].clamp_min(ENERGY_EPS)) * 10.0 ** (total[a].to(audio.dtype) / 20.0)
            other = audio[b] * gain
            target[a], background[a] = audio[a], other
            target[b], background[b] = other, audio[a]
            chosen[a], chosen[b] = (b,), (a,)
            total[b] = -total[a]
        chosen = tuple(chosen)

    peak = (target + background).abs().amax(dim=(-2, -1))
    declip = torch.where(peak > 1.0, config.declip_peak / peak.clamp_min(1e-12), torch.ones_like(peak))
    target = target * declip[:, None, None]
    background = background * declip[:, None, None]
    return Mixture(
        mixture=target + background,
        target=target,
        background=background,
        background_db=total,
        background_indices=chosen,
    )
