"""Half-space trees over whole batches with numpy: the unsupervised part of the fraud score.

Why not `river.anomaly.HalfSpaceTrees` itself: it walks Python node objects
and dicts per event, measured here at tens of microseconds per `score_one` +
`learn_one` with 25 trees of height 8 against a budget of ~25 us for the whole
engine per payment (`benchmarks/fraud_quality.py` prints both). The algorithm
is the same (Tan, Ting & Liu, 2011): random trees over [0, 1] features, whose
nodes count how many recent events fell in them; an event in a region that
held few events of the last full window is anomalous. Here the trees are flat
arrays, so a batch of payments goes down every tree at once: a handful of
numpy operations per depth level, whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class HalfSpaceForest:
    """Streaming half-space trees scoring and learning whole batches (numpy).

    Works when anomalies are few and spread out in feature space; fails when
    they come bunched (then they are the mass of their region: a card-testing
    wave of thousands would look normal by its second window, which is why the
    rules and the supervised model sit beside it). Scores of the first window
    are 0: there is no reference mass yet.

    The score is `1 - mean over trees of min(1, mass * 2**depth / window_size)`:
    0 for an event in a region as dense as uniform or denser, towards 1 for an
    event in a region the last window hardly visited.

    Cost: `score_many` and `learn_many` do O(height) numpy operations on
    (n_trees x batch) arrays; per event under a microsecond in batches of a few
    hundred. `score_one` pays the same fixed cost for one event: use batches.

    Parameters
    ----------
    n_features
        Input width; inputs are expected in [0, 1].
    n_trees
        Trees in the forest.
    height
        Depth of every tree.
    window_size
        Events per window: the reference mass is the last full window's.
    limit
        Share of `window_size` below which a node is too thin to descend (0.1 in the paper).
    seed
        Seed of the random splits.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> forest = HalfSpaceForest(n_features=2, n_trees=10, height=6, window_size=200, seed=1)
    >>> forest.learn_many(rng.normal(0.3, 0.03, size=(400, 2)).clip(0, 1))
    >>> normal, odd = forest.score_many(np.array([[0.3, 0.3], [0.9, 0.95]]))
    >>> bool(odd > 0.9 and normal < 0.2)
    True
    """

    def __init__(
        self,
        n_features: int,
        n_trees: int = 25,
        height: int = 8,
        window_size: int = 1000,
        limit: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.n_features = n_features
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.limit = limit
        self.seed = seed
        rng = np.random.default_rng(seed)
        n_internal = 2**height - 1
        n_nodes = 2 ** (height + 1) - 1
        self._feature = np.zeros((n_trees, n_internal), dtype=np.int64)
        self._split = np.zeros((n_trees, n_internal))
        for t in range(n_trees):
            # Work ranges of the paper: around a random point, wide enough to cover [0, 1] whatever it is.
            s = rng.random(n_features)
            width = 2.0 * np.maximum(s, 1.0 - s)
            lows, highs = s - width, s + width
            ranges = [(lows.copy(), highs.copy())]
            for node in range(n_internal):
                lo, hi = ranges[node]
                q = int(rng.integers(n_features))
                mid = (lo[q] + hi[q]) / 2.0
                self._feature[t, node] = q
                self._split[t, node] = mid
                left_hi, right_lo = hi.copy(), lo.copy()
                left_hi[q], right_lo[q] = mid, mid
                ranges.append((lo, left_hi))
                ranges.append((right_lo, hi))
        self._reference = np.zeros((n_trees, n_nodes))  # r: masses of the last full window
        self._latest = np.zeros((n_trees, n_nodes))  # l: masses of the window being filled
        self._in_window = 0
        self.windows = 0
        self._depth_weight = np.array([2.0**d for d in range(height + 1)])
        # Flat views: a node is addressed as tree * n_nodes + node, so every gather is one `take`
        # on a 1-d array (about 3x cheaper than 2-d fancy indexing with a tree and a node array).
        self._tree_offsets = (np.arange(n_trees, dtype=np.int64) * n_nodes)[:, None]
        padded_feature = np.zeros((n_trees, n_nodes), dtype=np.int64)
        padded_split = np.zeros((n_trees, n_nodes))
        padded_feature[:, :n_internal] = self._feature
        padded_split[:, :n_internal] = self._split
        self._feature_flat = padded_feature.ravel()
        self._split_flat = padded_split.ravel()

    def _paths(self, x: FloatArray) -> npt.NDArray[np.int64]:
        """Flat node index (tree * n_nodes + node) per depth 0..height, tree and event: (height + 1, n_trees, n).

        One preallocated array, filled in place level by level: the batches are small (a scorer
        shard sees tens of payments per Bytewax batch), so numpy's per-call cost is what counts.
        """
        n, d = x.shape
        flat_x = np.ascontiguousarray(x).ravel()
        row_offsets = (np.arange(n, dtype=np.int64) * d)[None, :]
        offsets = self._tree_offsets
        nodes = np.empty((self.height + 1, self.n_trees, n), dtype=np.int64)
        node = nodes[0]
        node[:] = offsets  # every tree's root
        feature, split = self._feature_flat, self._split_flat
        for depth in range(1, self.height + 1):
            q = feature.take(node)
            q += row_offsets
            right = flat_x.take(q) >= split.take(node)
            child = nodes[depth]
            np.multiply(node, 2, out=child)  # child of node k is 2k+1 (left) or 2k+2 (right), per tree
            child -= offsets
            child += right
            child += 1
            node = child
        return nodes

    def score_many(self, x: FloatArray | Sequence[Sequence[float]]) -> FloatArray:
        """Anomaly scores in [0, 1] of a batch (rows are events); reads only."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[0] == 0 or self.windows == 0:
            return np.zeros(x.shape[0])
        return self._score_paths(self._paths(x), x.shape[0])

    def score_learn_many(self, x: FloatArray | Sequence[Sequence[float]]) -> FloatArray:
        """`score_many` then `learn_many` of the same batch, walking the trees once: what a flow does per batch."""
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[0]
        if n == 0:
            return np.zeros(0)
        paths = self._paths(x)
        scores = self._score_paths(paths, n) if self.windows else np.zeros(n)
        self._learn_paths(paths, n)
        return scores

    def _score_paths(self, paths: npt.NDArray[np.int64], n: int) -> FloatArray:
        # The mass of the first node on each path that is too thin to descend (else the leaf's), in one pass
        # over all depths rather than a masked assignment per depth.
        r = self._reference.ravel().take(paths)
        stop = r < self.limit * self.window_size
        stop[-1] = True
        first = stop.argmax(axis=0)
        mass = np.take_along_axis(r, first[None], axis=0)[0] * self._depth_weight[first]
        relative = np.minimum(1.0, mass / self.window_size)
        scores: FloatArray = 1.0 - relative.mean(axis=0)
        return scores

    def score_one(self, x: Sequence[float]) -> float:
        return float(self.score_many(np.asarray([x], dtype=np.float64))[0])

    def learn_many(self, x: FloatArray | Sequence[Sequence[float]]) -> None:
        """Count a batch into the current window; a full window becomes the reference."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[0]:
            self._learn_paths(self._paths(x), x.shape[0])

    def _learn_paths(self, paths: npt.NDArray[np.int64], n: int) -> None:
        latest = self._latest.ravel()  # a view: the counts land in `_latest`
        start = 0
        while start < n:
            # Never let a batch straddle a window boundary: the swap happens exactly every window_size events.
            take = min(self.window_size - self._in_window, n - start)
            # add.at touches only the visited nodes (a bincount would build and add a whole forest of zeros).
            np.add.at(latest, paths[:, :, start : start + take].ravel(), 1.0)
            self._in_window += take
            start += take
            if self._in_window == self.window_size:
                self._reference, self._latest = self._latest, np.zeros_like(self._latest)
                latest = self._latest.ravel()
                self._in_window = 0
                self.windows += 1

    def learn_one(self, x: Sequence[float]) -> None:
        self.learn_many(np.asarray([x], dtype=np.float64))
