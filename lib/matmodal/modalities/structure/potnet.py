"""A plain-PyTorch PotNet encoder (own implementation of Lin et al., ICML 2023, arXiv:2306.10045).

Architecture (as costa2025 §4.2.2 describes it):

1. node embedding from the atomic number Z (learned table, 119 × ``hidden``);
2. edge features: radial basis expansion of local bond distances (Å) and of the three
   infinite-lattice potential sums (Coulomb, London, Pauli; see :mod:`.lattice_sums`);
3. three PotNet convolution layers; each sums a gated message over local edges and one over
   the complete set of infinite edges (CGCNN-style gate ``σ(W_g z) ⊙ softplus(W_s z)`` with
   ``z = [h_i, h_j, e_ij]``, mean aggregation, LayerNorm, residual);
4. one transformer-style graph attention convolution (Shi et al. 2021, "TransformerConv")
   over the local edges;
5. global mean pooling over atoms and a fully connected layer to the 128-d embedding.

For ``mode="trained"`` a small head (SiLU, Linear 128 → 1) is put on top and removed after
training. No torch-geometric: message passing uses ``index_add_`` and a segment softmax.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from matmodal.modalities.structure.graph import PeriodicGraph

MAX_Z = 118


@dataclass(frozen=True)
class PotNetSettings:
    """Encoder sizes and the fixed ranges of the edge-feature expansions."""

    hidden: int = 64  # atom/edge feature width (out_dim is the embedding size)
    out_dim: int = 128
    conv_layers: int = 3
    heads: int = 4
    distance_bins: int = 32
    potential_bins: int = 24
    max_distance: float = 8.0  # Å, local-edge RBF range [0, max_distance]
    coulomb_range: tuple[float, float] = (-1.5, 1.5)  # Å⁻¹
    london_log10_range: tuple[float, float] = (-6.0, 1.0)  # log10(Å⁻⁶)
    pauli_distance_range: tuple[float, float] = (0.5, 12.0)  # -ln(S)/α, Å

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class GaussianBasis(nn.Module):
    """Gaussian radial basis on ``bins`` evenly spaced centres in [low, high] (input clipped)."""

    def __init__(self, low: float, high: float, bins: int) -> None:
        super().__init__()
        self.register_buffer("centres", torch.linspace(low, high, bins))
        self.low, self.high = low, high
        self.gamma = 1.0 / ((high - low) / (bins - 1)) ** 2

    def forward(self, x: Tensor) -> Tensor:
        x = x.clamp(self.low, self.high).unsqueeze(-1)
        return torch.exp(-self.gamma * (x - self.centres) ** 2)


@dataclass
class GraphBatch:
    """Several graphs as one disjoint graph (torch tensors)."""

    z: Tensor  # (N,)
    graph_index: Tensor  # (N,) which graph each atom belongs to
    n_graphs: int
    local_src: Tensor
    local_dst: Tensor
    local_distance: Tensor
    inf_src: Tensor
    inf_dst: Tensor
    potentials: Tensor  # (P, 3)


def collate(graphs: Sequence[PeriodicGraph], alpha: float) -> GraphBatch:
    """Batch graphs; potentials are mapped to (Coulomb, log10 London, Pauli distance)."""
    z, index, lsrc, ldst, ldist, isrc, idst, pots = [], [], [], [], [], [], [], []
    offset = 0
    for k, g in enumerate(graphs):
        n = g.n_sites
        z.append(g.atomic_numbers)
        index.append(np.full(n, k))
        lsrc.append(g.local_src + offset)
        ldst.append(g.local_dst + offset)
        ldist.append(g.local_distance)
        centre, neighbour = np.divmod(np.arange(n * n), n)
        isrc.append(neighbour + offset)
        idst.append(centre + offset)
        pots.append(g.potentials)
        offset += n
    p = np.concatenate(pots)
    features = np.stack([p[:, 0], np.log10(np.maximum(p[:, 1], 1e-30)),
                         -np.log(np.maximum(p[:, 2], 1e-300)) / alpha], axis=1)

    def long(parts: list[np.ndarray]) -> Tensor:
        return torch.from_numpy(np.concatenate(parts).astype(np.int64))

    def real(array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.asarray(array, dtype=np.float32))

    return GraphBatch(long(z), long(index), len(graphs), long(lsrc), long(ldst),
                      real(np.concatenate(ldist)), long(isrc), long(idst), real(features))


def mean_aggregate(messages: Tensor, dst: Tensor, n_nodes: int) -> Tensor:
    """Mean of incoming messages per destination node (zeros where none)."""
    total = messages.new_zeros(n_nodes, messages.shape[1]).index_add_(0, dst, messages)
    count = messages.new_zeros(n_nodes).index_add_(0, dst, torch.ones_like(dst, dtype=messages.dtype))
    return total / count.clamp(min=1).unsqueeze(1)


class GatedMessage(nn.Module):
    """CGCNN-style gated message ``σ(W_g z) ⊙ softplus(W_s z)``, z = [h_dst, h_src, e].

    The linear maps of the concatenation are split (W z = W_d h_dst + W_s h_src + W_e e) so
    the node parts are computed once per atom instead of once per edge.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.dst_proj = nn.Linear(hidden, 2 * hidden)
        self.src_proj = nn.Linear(hidden, 2 * hidden, bias=False)
        self.edge_proj = nn.Linear(hidden, 2 * hidden, bias=False)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: Tensor, src: Tensor, dst: Tensor, edge: Tensor) -> Tensor:
        z = self.dst_proj(h)[dst] + self.src_proj(h)[src] + self.edge_proj(edge)
        gate, core = z.split(self.hidden, dim=1)
        messages = torch.sigmoid(gate) * nn.functional.softplus(core)
        return self.norm(mean_aggregate(messages, dst, h.shape[0]))


class PotNetConv(nn.Module):
    """One PotNet layer: local-edge message + infinite-edge message, residual, softplus."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.local = GatedMessage(hidden)
        self.infinite = GatedMessage(hidden)

    def forward(self, h: Tensor, batch: GraphBatch, local_e: Tensor, inf_e: Tensor) -> Tensor:
        update = (self.local(h, batch.local_src, batch.local_dst, local_e)
                  + self.infinite(h, batch.inf_src, batch.inf_dst, inf_e))
        return nn.functional.softplus(h + update)


def segment_softmax(scores: Tensor, segment: Tensor, n_segments: int) -> Tensor:
    """Softmax of ``scores`` (E, H) within groups of equal ``segment`` (E,)."""
    index = segment.unsqueeze(1).expand_as(scores)
    peak = scores.new_full((n_segments, scores.shape[1]), -math.inf)
    peak = peak.scatter_reduce(0, index, scores, reduce="amax", include_self=True)
    weights = torch.exp(scores - peak[segment])
    total = scores.new_zeros(n_segments, scores.shape[1]).index_add_(0, segment, weights)
    return weights / total[segment]


class TransformerConv(nn.Module):
    """Graph attention with edge features (Shi et al. 2021): multi-head, skip connection."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError("hidden must be divisible by heads")
        self.heads, self.width = heads, hidden // heads
        self.query, self.key = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.value, self.edge = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden, bias=False)
        self.skip = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: Tensor, src: Tensor, dst: Tensor, edge: Tensor) -> Tensor:
        shape = (-1, self.heads, self.width)
        e = self.edge(edge).view(shape)
        q = self.query(h).view(shape)[dst]
        k = self.key(h).view(shape)[src] + e
        v = self.value(h).view(shape)[src] + e
        alpha = segment_softmax((q * k).sum(-1) / math.sqrt(self.width), dst, h.shape[0])
        out = h.new_zeros(h.shape[0], self.heads, self.width)
        out = out.index_add_(0, dst, alpha.unsqueeze(-1) * v).view(h.shape[0], -1)
        return nn.functional.softplus(self.skip(h) + self.norm(out))


class PotNetEncoder(nn.Module):
    """Structure graph → ``out_dim`` embedding (3 PotNetConv + TransformerConv + mean pool + FC)."""

    def __init__(self, settings: PotNetSettings | None = None) -> None:
        super().__init__()
        s = self.settings = settings or PotNetSettings()
        self.atom_embedding = nn.Embedding(MAX_Z + 1, s.hidden)
        self.distance_basis = GaussianBasis(0.0, s.max_distance, s.distance_bins)
        self.coulomb_basis = GaussianBasis(*s.coulomb_range, s.potential_bins)
        self.london_basis = GaussianBasis(*s.london_log10_range, s.potential_bins)
        self.pauli_basis = GaussianBasis(*s.pauli_distance_range, s.potential_bins)
        self.local_edge = nn.Sequential(nn.Linear(s.distance_bins, s.hidden), nn.Softplus())
        self.inf_edge = nn.Sequential(nn.Linear(3 * s.potential_bins, s.hidden), nn.Softplus())
        self.convs = nn.ModuleList(PotNetConv(s.hidden) for _ in range(s.conv_layers))
        self.attention = TransformerConv(s.hidden, s.heads)
        self.fc = nn.Linear(s.hidden, s.out_dim)

    def forward(self, batch: GraphBatch) -> Tensor:
        h = self.atom_embedding(batch.z)
        local_e = self.local_edge(self.distance_basis(batch.local_distance))
        p = batch.potentials
        inf_e = self.inf_edge(torch.cat([self.coulomb_basis(p[:, 0]), self.london_basis(p[:, 1]),
                                         self.pauli_basis(p[:, 2])], dim=1))
        for conv in self.convs:
            h = conv(h, batch, local_e, inf_e)
        h = self.attention(h, batch.local_src, batch.local_dst, local_e)
        pooled = mean_aggregate(h, batch.graph_index, batch.n_graphs)
        return self.fc(pooled)


class PotNetRegressor(nn.Module):
    """Encoder plus a scalar head, used only to train the encoder on a target."""

    def __init__(self, encoder: PotNetEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(encoder.settings.out_dim, 1))

    def forward(self, batch: GraphBatch) -> Tensor:
        return self.head(self.encoder(batch)).squeeze(-1)


@dataclass(frozen=True)
class TrainSettings:
    """Brief supervised training of encoder + head on one standardised target (mode "trained")."""

    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class deterministic_torch:
    """Context: deterministic CPU algorithms and ``threads`` intra-op threads, then restore.

    Note: ``torch.set_num_threads`` is process-wide, so concurrent threads of the caller see it.
    """

    def __init__(self, threads: int = 1) -> None:
        self.threads = max(1, threads)

    def __enter__(self) -> deterministic_torch:
        self._saved = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.use_deterministic_algorithms(self._saved[0])
        torch.set_num_threads(self._saved[1])


def make_encoder(seed: int, settings: PotNetSettings | None = None) -> PotNetEncoder:
    """A randomly initialised encoder; the same seed always gives the same weights."""
    torch.manual_seed(seed)
    return PotNetEncoder(settings)


@torch.no_grad()
def embed_graphs(encoder: PotNetEncoder, graphs: Sequence[PeriodicGraph], alpha: float,
                 batch_size: int = 64) -> np.ndarray:
    """Embeddings (len(graphs), out_dim) float32 from a frozen encoder in eval mode."""
    encoder.eval()
    parts = [encoder(collate(graphs[i:i + batch_size], alpha)).numpy()
             for i in range(0, len(graphs), batch_size)]
    if not parts:
        return np.zeros((0, encoder.settings.out_dim), np.float32)
    return np.concatenate(parts).astype(np.float32)


def train_encoder(encoder: PotNetEncoder, graphs: Sequence[PeriodicGraph], target: np.ndarray,
                  alpha: float, seed: int, settings: TrainSettings | None = None) -> dict[str, float]:
    """Train encoder + head on standardised ``target`` (L1 loss), then freeze the encoder.

    Returns training figures: epochs, n_train, final train MAE in target units.
    """
    settings = settings or TrainSettings()
    mean, std = float(np.mean(target)), float(np.std(target)) or 1.0
    y = torch.from_numpy(((target - mean) / std).astype(np.float32))
    model = PotNetRegressor(encoder)
    torch.manual_seed(seed)
    nn.init.zeros_(model.head[1].bias)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    batches = [(i, collate(graphs[i:i + settings.batch_size], alpha))
               for i in range(0, len(graphs), settings.batch_size)]
    model.train()
    total = 0.0
    for _ in range(settings.epochs):
        total = 0.0
        for k in torch.randperm(len(batches), generator=generator).tolist():
            start, batch = batches[k]
            optimiser.zero_grad()
            loss = nn.functional.l1_loss(model(batch), y[start:start + batch.n_graphs])
            loss.backward()
            optimiser.step()
            total += float(loss) * batch.n_graphs
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    encoder.eval()
    mae = total / max(len(graphs), 1) * std if settings.epochs else float("nan")
    return {"epochs": settings.epochs, "n_train": len(graphs), "train_mae_last_epoch": mae}
