"""How well the training phrasings cover the held-out ones in the frozen text encoder's space.

No separation network is involved: this measures the queries only. For every held-out phrasing
of every class (audiosep/recipes/debian_sounds/phrasings.py) it finds the nearest training
phrasing by cosine and reports, for two training sets -- version 1's three captions per class and
all of version 2's training phrasings -- and for the class centroid (the renormalised mean of the
training phrasings, what ``queries.caption_average`` trains on):

* nearest-class accuracy: how often the nearest training text belongs to the held-out phrasing's class;
* own cosine: mean cosine of a held-out phrasing to its own class's nearest training text;
* margin: mean of (own cosine - best cosine of any other class).

It also prints how far ``queries.embedding_noise`` moves an embedding (cosine
``1 / sqrt(1 + s**2)``), to compare with the gap between held-out and training wordings.

    python benchmarks/bench_phrasings.py [--encoder minilm] [--worst 12]
"""
from __future__ import annotations

import argparse

import torch

from audiosep.query import build_query_encoder
from audiosep.recipes.debian_sounds.labels import CLASS_BY_NAME
from audiosep.recipes.debian_sounds.phrasings import PHRASINGS, heldout_phrasings, training_phrasings


def score(queries: torch.Tensor, query_class: list[int], keys: torch.Tensor, key_class: list[int],
          n_classes: int) -> tuple[float, float, float]:
    """(accuracy, own cosine, margin) of ``queries`` Tensor[Q, D] against ``keys`` Tensor[K, D]."""
    sim = queries @ keys.T  # [Q, K]
    kc = torch.tensor(key_class)
    per_class = torch.full((len(queries), n_classes), -2.0)
    for c in range(n_classes):
        cols = kc == c
        if bool(cols.any()):
            per_class[:, c] = sim[:, cols].max(dim=1).values
    qc = torch.tensor(query_class)
    own = per_class[torch.arange(len(queries)), qc]
    others = per_class.clone()
    others[torch.arange(len(queries)), qc] = -2.0
    acc = float((per_class.argmax(dim=1) == qc).float().mean())
    return acc, float(own.mean()), float((own - others.max(dim=1).values).mean())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm", help="query_encoder.kind (default: minilm, offline)")
    parser.add_argument("--worst", type=int, default=12, help="weakest classes listed (default: 12)")
    args = parser.parse_args(argv)
    encoder = build_query_encoder({"kind": args.encoder})
    names = sorted(PHRASINGS)
    held, held_class, v1, v1_class, v2, v2_class = [], [], [], [], [], []
    for c, name in enumerate(names):
        for text in heldout_phrasings(name):
            held.append(text)
            held_class.append(c)
        spec = CLASS_BY_NAME.get(name)
        for text in (spec.captions if spec is not None else training_phrasings(name)[:3]):
            v1.append(text)
            v1_class.append(c)
        for text in training_phrasings(name):
            v2.append(text)
            v2_class.append(c)
    with torch.no_grad():
        e_held, e_v1, e_v2 = (encoder.encode_text(t).float().cpu() for t in (held, v1, v2))
    centroids = torch.nn.functional.normalize(
        torch.stack([e_v2[torch.tensor(v2_class) == c].mean(0) for c in range(len(names))]), dim=-1)
    print(f"{len(names)} classes, {len(held)} held-out phrasings; training texts: v1 {len(v1)}, v2 {len(v2)}; "
          f"encoder {args.encoder}")
    print(f"{'training texts':<34} {'nearest-class acc':>17} {'own cosine':>10} {'margin':>7}")
    for label, keys, key_class in (("v1: 3 captions per class", e_v1, v1_class),
                                   ("v2: all training phrasings", e_v2, v2_class),
                                   ("v2: class centroid (averaging)", centroids, list(range(len(names))))):
        acc, own, margin = score(e_held, held_class, keys, key_class, len(names))
        print(f"{label:<34} {acc:>16.1%} {own:>10.3f} {margin:>7.3f}")
    # per class (v2 phrasings): the classes whose held-out phrasings most often land nearest another class
    sim = e_held @ e_v2.T
    nearest = torch.tensor(v2_class)[sim.argmax(dim=1)]
    rows = []
    for c, name in enumerate(names):
        mine = torch.tensor(held_class) == c
        wrong = nearest[mine][nearest[mine] != c]
        if len(wrong):
            top = names[int(torch.mode(wrong).values)]
            rows.append((float((nearest[mine] == c).float().mean()), name, top, len(wrong), int(mine.sum())))
    print("weakest classes (v2 phrasings; held-out phrasings nearest their own class, most confused with):")
    for acc, name, top, n_wrong, n in sorted(rows)[: args.worst]:
        print(f"  {name:<16} {acc:>6.1%} of {n}  -> {top} ({n_wrong} wrong)")
    print("embedding_noise s -> cosine to the clean embedding: " +
          ", ".join(f"{s:g}: {1 / (1 + s * s) ** 0.5:.3f}" for s in (0.1, 0.2, 0.3, 0.5)))


if __name__ == "__main__":
    main()
