# ultralytics-weighted, AGPL-3.0 license
"""balance_agg=auto: the probabilities closest to uniform whose expected class shares hit the targets (an extension).

The fixed aggregations (mean, max, median, sum) are the core's (`balance.py`); this module solves for the image
probabilities instead, and is used by the plugin's `weighted_probabilities` for `balance_agg=auto`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from ..core.balance import inverse_frequency_weights

# balance_agg=auto: solved probabilities (see `AutoSolver`)
AUTO_TOLERANCE = 1.02  # stop once max/min over classes of (expected share / target share) is at most this
AUTO_MIN_DRAWS = 0.02  # floor of expected draws per epoch N * p_i of every labelled image: nothing drops out
AUTO_MAX_DRAWS = 10.0  # cap of expected draws per epoch N * p_i: more draws of one image mostly feed memorization
AUTO_MAX_ITER = 30  # Newton iterations at most, both phases together (reachable targets take fewer than 10)
AUTO_MAX_STEP = 2.0  # largest change of one class' log weight per Newton iteration (trust region)
AUTO_MIN_PROGRESS, AUTO_PATIENCE = 0.01, 2  # stop after 2 iterations that do not cut the imbalance by 1% more
AUTO_BLAS_THREADS = 1  # BLAS threads of the solver, whatever the environment says (see `AutoSolver.solve`)
AUTO_SLAB = 1 << 14  # images per slab at most (`AutoSolver._layout`): one slab's temporaries stay small
AUTO_BLOCK = 1 << 16  # images per block of `AutoSolver._clipped_total`: 512 KB of float64 temporaries stay in cache


def target_shares(counts: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Return the class shares that balancing at `strength` s aims for: t_c ∝ n_c ** (1 - s).

    Args:
        counts (np.ndarray): Instances per class.
        strength (float): Balancing strength in [0, 1]; 1 = equal shares of the classes present, 0 = shares as in
            the data.

    Returns:
        (np.ndarray): float64 target share per class, summing to 1 over the classes present (0 for absent classes).

    Examples:
        >>> target_shares(np.array([90, 10, 0])).tolist()
        [0.5, 0.5, 0.0]
        >>> target_shares(np.array([90, 10, 0]), strength=0.5).round(2).tolist()
        [0.75, 0.25, 0.0]
    """
    counts = np.asarray(counts, dtype=np.float64)
    t = np.zeros_like(counts)
    present = counts > 0
    t[present] = counts[present] ** (1.0 - strength)
    return t / t.sum() if present.any() else t


def _histogram(codes: np.ndarray, weights: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Return `out` set to np.bincount(codes, weights, len(out)), the same sums in the same order, but faster.

    np.add.at (numpy >= 1.25) adds in place without np.bincount's pass for the minimum and maximum code and without a
    fresh histogram per call; `codes` must lie in [0, len(out)). Small integer codes are cast to intp first: np.add.at
    adds intp indices 15% faster than it converts others one by one.
    """
    out.fill(0.0)
    np.add.at(out, codes.astype(np.intp, copy=False), weights)
    return out


class AutoSolver:
    """Solve balance_agg=auto: the maximum-entropy probabilities of n labelled images whose class shares hit targets.

    1. Problem: the q closest to uniform u = 1/n in KL divergence with sum_i q_i (A_ic - t_c n_i) = 0 for every class c
    (A_ic = instances of c in image i, n_i = sum_c A_ic, t = `target_shares`) and lo <= q_i <= hi, where lo = floor/n
    and hi = cap/n keep n q_i (= N p_i) within [AUTO_MIN_DRAWS, AUTO_MAX_DRAWS]. Its solution has one weight per class:
    q_i = clip(exp(z_i - a), lo, hi) with z_i = sum_c A_ic psi_c, psi = phi - (t . phi), and `a` normalizing. The
    multipliers phi minimize the convex dual f(phi) = max_q [q . z - KL(q || u)], a C-dimensional problem: damped
    Newton steps with a line search (`_dual_newton`); the first iterate whose shares are within AUTO_TOLERANCE of the
    targets is returned.

    2. Targets out of reach inside the bounds leave the dual without a minimum. That is certified by f < -log(cap), as
    every q within the bounds has KL(q || u) <= log(cap), or shows as Newton stalling (AUTO_PATIENCE iterations without
    AUTO_MIN_PROGRESS). The solver then minimizes the spread of the log share ratios, sum_c (rho_c - mean(rho))^2 with
    rho_c = log(share_c / t_c), by Gauss-Newton steps in psi from the most balanced point so far
    (`_share_gauss_newton`).

    3. Then the most balanced of that point and the four fixed aggregations (clipped to the same bounds) is returned
    (`_fixed_candidates`).

    The labels are held as the sparse matrix A: one (image, class, count) triple per class present in an image (a crowd
    of one class is one entry), with the classes renumbered in order of their class weight (as the median aggregation
    needs), grouped by the number of classes of their image so that each image's triples, in class order, form one
    column of a dense slab (`_layout`). Every step is a few vectorized passes over the triples. The phases share the
    budget of AUTO_MAX_ITER iterations and the most balanced point found so far.

    Attributes:
        n (int): Number of labelled images.
        n_classes (int): Number of classes C.
        counts (np.ndarray): Instances per class, classes renumbered in weight order.
        weights (np.ndarray): Class weights `inverse_frequency_weights(counts, strength)`, non-decreasing.
        t (np.ndarray): Target share per class, `target_shares(counts, strength)`.
        single_objects (bool): Whether every image holds exactly one object.
        lo (float): Lower bound of q_i, AUTO_MIN_DRAWS / n.
        hi (float): Upper bound of q_i, AUTO_MAX_DRAWS / n.
        chunk (int): Images per block of `_triples`.
        order (np.ndarray): The images in the solver's numbering (sorted by their number of classes k); q_i, z_i and
            `log_prior` are in that order, and `solve` puts the probabilities back.
        groups (list): (k, first image, end image, first triple, end triple) of up to AUTO_SLAB images with k classes.
        cls (np.ndarray): Class of each triple (the smallest unsigned integer type that holds them: fewer bytes to
            read on every pass), as a (k, images) slab per group (see `_layout`).
        amount (np.ndarray): Instance count of each triple (the smallest unsigned integer type that holds them), as
            `cls`.
        middle (np.ndarray): (2, n) classes of instances (length - 1) // 2 and length // 2 of each image in class order
            (the median aggregation's), images as `order`.
        image_scratch (np.ndarray): Two float64 values per image, reused: fresh large arrays cost page faults on
            every pass. Row 0 holds the log weights z that go into `_clipped_softmax`, row 1 its exp(z - a0) and other
            temporaries outside it.
        buffers (list): float64 arrays of n values that hold the q of evaluations (and phase 3's temporaries and the
            probabilities `solve` returns), reused once no longer in use (`_buffer`): a fresh q per evaluation would
            cost page faults on every evaluation.
        best (float): Imbalance (max/min of share_c / t_c) of the most balanced point so far.
        best_point (tuple): That point, (psi, q, a, free, e).
        iterations (int): Newton and Gauss-Newton iterations taken so far.
    """

    def __init__(
        self,
        cls: np.ndarray,
        lengths: np.ndarray,
        counts: np.ndarray,
        strength: float,
        class_multipliers: np.ndarray | None = None,
        image_multipliers: np.ndarray | None = None,
    ):
        """Build the triples, targets and bounds.

        Args:
            cls (np.ndarray): Class id of every instance, in [0, C) with every class present, images in order.
            lengths (np.ndarray): Number of instances of each (labelled) image, all > 0: n = len(lengths) images.
            counts (np.ndarray): Instances per class as drawn before balancing (weighted by the image multipliers, if
                any; any common scale), all > 0: the counts the caller has already made.
            strength (float): Balancing strength in [0, 1].
            class_multipliers (np.ndarray, optional): Factor > 0 per class on its target share and class weight.
            image_multipliers (np.ndarray, optional): Weight > 0 per image: the reference distribution q stays closest
                to (instead of uniform), and the weights of the instance counts.
        """
        n = self.n = len(lengths)
        self.n_classes = int(cls.max()) + 1
        self.chunk = max(1, (1 << 18) // self.n_classes)  # images per block of `_triples`: its sort stays in cache
        v = None if image_multipliers is None else np.asarray(image_multipliers, dtype=np.float64)
        if v is not None:  # mean 1: log(v_i) = log(n u_i) of the reference distribution u = v / sum(v)
            v = v * (n / v.sum())
        counts = np.asarray(counts, dtype=np.float64)
        m = np.ones(self.n_classes) if class_multipliers is None else np.asarray(class_multipliers, dtype=np.float64)
        weights = inverse_frequency_weights(counts, strength) * m
        order = np.argsort(weights, kind="stable")  # renumber the classes in weight order
        renumber, self.counts, self.weights = np.argsort(order), counts[order], weights[order]
        t = target_shares(self.counts, strength) * m[order]
        self.t = t / t.sum()
        self.single_objects = len(cls) == n
        self.lo, self.hi = min(AUTO_MIN_DRAWS, 1.0) / n, max(AUTO_MAX_DRAWS, 1.0) / n
        per_image, triple_cls, triple_count, middle = self._triples(cls, lengths, renumber)
        self.order, self.groups, self.cls, self.amount = self._layout(per_image, triple_cls, triple_count)
        del per_image, triple_cls, triple_count
        self.middle = middle[:, self.order]
        # log(n u_i) of the reference distribution u (0 for uniform), added to every image's log weight z_i
        self.log_prior = None if v is None else np.log(v, out=v)[self.order]
        self.image_scratch, self.buffers = np.empty((2, n)), []
        self.best, self.best_point, self.iterations = np.inf, None, 0

    def solve(self) -> np.ndarray:
        """Return the float64 probabilities of the n images, summing to 1: phase 1, then if needed phases 2 and 3.

        BLAS runs on one thread here (AUTO_BLAS_THREADS): the C x C products are too small to gain from more, and its
        spinning threads slowed two processes solving at once (two DDP ranks) or a busy neighbour process 5x.
        """
        with threadpool_limits(limits=AUTO_BLAS_THREADS, user_api="blas"):
            self._dual_newton()
            if self.best <= AUTO_TOLERANCE:
                q = self.best_point[1]
            else:
                self._share_gauss_newton()
                q = self._fixed_candidates()
        # back from the solver's image order (grouped by classes per image), into a buffer no longer in use: a fresh
        # array of n values would cost page faults
        probabilities = self._buffer(q)
        probabilities[self.order] = q
        self.buffers = [b for b in self.buffers if b is not probabilities]  # the caller's now: never reused here
        return probabilities

    def _blocks(self, lengths: np.ndarray) -> Iterator[tuple[int, int, slice]]:
        """Yield (first image, images, slice of the instances) of each block of `chunk` images."""
        n, chunk = self.n, self.chunk
        # the first instance of each block from the blocks' sums: no running sum over all images (fresh memory)
        bounds = np.concatenate(([0], np.cumsum(np.add.reduceat(lengths, np.arange(0, n, chunk)))))
        for k, s in enumerate(range(0, n, chunk)):
            yield s, min(chunk, n - s), slice(bounds[k], bounds[k + 1])

    def _triples(self, cls: np.ndarray, lengths: np.ndarray, renumber: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the sparse A as (classes per image, class, count) arrays sorted by image and class, and `middle`.

        `middle` (2, n) holds the classes of each image's middle instances, for the median aggregation. Classes are
        renumbered by `renumber` (class id -> rank in weight order). The (image, class) keys of `chunk` images at a time
        are sorted (in cache, the images are already in order): each run of equal keys is a triple, and instances
        (length - 1) // 2 and length // 2 of an image (0-based, in class order) are its middle ones.
        """
        n_classes, most = self.n_classes, int(lengths.max())
        # written block by block into arrays of the smallest types, sized for one triple per instance: only the pages
        # written are touched (fresh memory is slow), and nothing is copied at the end
        per_image = np.empty(self.n, dtype=np.min_scalar_type(min(n_classes, most)))
        triple_cls = np.empty(len(cls), dtype=np.min_scalar_type(n_classes - 1))
        triple_count = np.empty(len(cls), dtype=np.min_scalar_type(most))
        middle = np.empty((2, self.n), dtype=triple_cls.dtype)
        renumber, end = renumber.astype(np.int32), 0
        for s, size, i in self._blocks(lengths):
            length = lengths[s : s + size]
            image = np.repeat(np.arange(size, dtype=np.int32), length)  # in the block
            key = image * np.int32(n_classes) + renumber[cls[i]]  # < chunk * C <= 2**18
            key.sort()
            first = np.cumsum(length) - length  # each image's instances, in class order, from its first
            middle[:, s : s + size] = key[first + (length - 1) // 2] % n_classes, key[first + length // 2] % n_classes
            head = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))  # first instance of each run
            begin, end = end, end + len(head)
            triple_count[begin:end] = np.diff(head, append=len(key))
            key = key[head]
            per_image[s : s + size] = np.bincount(key // n_classes, minlength=size)
            triple_cls[begin:end] = key % n_classes
        return per_image, triple_cls[:end], triple_count[:end], middle

    def _layout(self, per_image: np.ndarray, cls: np.ndarray, count: np.ndarray) -> tuple:
        """Return (order, groups, cls, amount): the triples regrouped by the number k of classes of their image.

        The solver numbers the images in `order`: stably sorted by k. The images with k classes form groups of up to
        AUTO_SLAB images, (k, first image, end image, first triple, end triple), whose triples are a contiguous
        (k, images) slab (small enough for the cache): row j holds each image's j-th class in weight order. So a
        per-image sum over its classes is a sum over the slab's rows (in the class order of the triples, as a bincount
        would add them), and the class pairs of the Hessian are pairs of rows.
        """
        first = np.cumsum(per_image, dtype=np.intp)
        first -= per_image  # first triple of each image (in place: fresh memory is slow)
        order = np.argsort(per_image.astype(np.min_scalar_type(self.n_classes)), kind="stable")  # small ints: radix
        edges = np.searchsorted(per_image[order], np.arange(int(per_image.max()) + 2))
        slab_cls, groups, end = np.empty(len(cls), dtype=np.min_scalar_type(self.n_classes - 1)), [], 0
        slab_amount = np.empty(len(cls), dtype=np.min_scalar_type(count.max()))  # exact in float64 products
        for k in np.flatnonzero(edges[2:] > edges[1:-1]) + 1:
            for start in range(edges[k], edges[k + 1], AUTO_SLAB):  # a chunk of up to AUTO_SLAB images: one slab
                stop = min(start + AUTO_SLAB, edges[k + 1])
                begin, end = end, end + k * (stop - start)
                # each image's k triples side by side: one sweep through the triples, not one per row
                source = first[order[start:stop], None] + np.arange(k)
                slab_cls[begin:end].reshape(k, -1)[:] = cls[source].T
                slab_amount[begin:end].reshape(k, -1)[:] = count[source].T
                groups.append((int(k), int(start), int(stop), begin, end))
        return order, groups, slab_cls, slab_amount

    def _chunks(self, *arrays: np.ndarray) -> Iterator[tuple]:
        """Yield (images, *(k, images) slabs of `arrays`) of each group, `arrays` holding a value per triple as `cls`.

        `images` is the slice of the group's images. Passes over the triples go group by group, so that their
        temporaries stay small (in cache, reused from the heap).
        """
        for k, start, stop, begin, end in self.groups:
            yield slice(start, stop), *(x[begin:end].reshape(k, stop - start) for x in arrays)

    def _buffer(self, *in_use: np.ndarray) -> np.ndarray:
        """Return an array of `buffers` that is none of `in_use` nor the best point's q, adding one if all are taken."""
        taken = [id(x) for x in in_use] + ([] if self.best_point is None else [id(self.best_point[1])])
        free = [buffer for buffer in self.buffers if id(buffer) not in taken]
        if not free:
            free.append(np.empty(self.n))
            self.buffers.append(free[0])
        return free[0]

    def _clipped_softmax(self, z: np.ndarray, a: float, out: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """Return (q, a, free): q_i = clip(exp(z_i - a), lo, hi) with the log normalizer `a` making sum(q) = 1.

        `free` marks the images strictly inside the bounds. sum(q) is continuous, piecewise exponential and decreasing
        in `a`: Newton steps (scale the free images so that they fill the mass the clipped ones leave, exact once the
        clipped set is right), kept inside a bisection bracket; `a` is the starting guess. exp(z - a) =
        exp(z - a0) * exp(a0 - a) costs one product per step while |a - a0| <= 30, the margin by which the exponents are
        clipped outside [log lo, log hi] (clipping q makes them moot beyond). The steps only need sums
        (`_clipped_total`); q is written to `out` (of `_buffer`) once, at the last step's `a`.
        """
        lo, hi = self.lo, self.hi
        log_lo, log_hi = np.log(lo), np.log(hi)
        a_low, a_high = z.min() - log_hi, z.max() - log_lo  # sum(q) = n*hi > 1 at a_low, n*lo < 1 at a_high
        a = a0 = min(max(a, a_low), a_high)
        x, q = self.image_scratch[1], out
        np.exp(np.clip(np.subtract(z, a0, out=x), log_lo - 31.0, log_hi + 31.0, out=x), out=x)
        for _ in range(100):
            if abs(a - a0) > 30.0:
                a0 = a
                np.exp(np.clip(np.subtract(z, a0, out=x), log_lo - 31.0, log_hi + 31.0, out=x), out=x)
            scale = np.exp(a0 - a)  # y = x * scale = exp(z - a)
            total, clipped = self._clipped_total(x, scale)
            if abs(total - 1.0) <= 1e-12:
                break
            a_low, a_high = (a, a_high) if total > 1.0 else (a_low, a)
            free_mass, rest = total - clipped, 1.0 - clipped  # the free images' mass, and the mass they should hold
            a_new = a + np.log(free_mass / rest) if free_mass > 0 and rest > 0 else 0.5 * (a_low + a_high)
            a = a_new if a_low < a_new < a_high else 0.5 * (a_low + a_high)
        q = np.clip(np.multiply(x, scale, out=q), lo, hi, out=q)  # y of the last step, whose sum is `total`
        free = (q > lo) & (q < hi)  # as y: strictly inside the bounds
        q /= q.sum()
        return q, a, free

    def _clipped_total(self, x: np.ndarray, scale: float) -> tuple[float, float]:
        """Return (sum_i y_i, the part of it at the bounds) for y = clip(x * scale, lo, hi), `_clipped_softmax`'s step.

        A block of AUTO_BLOCK images at a time: the temporaries stay in cache, one read of x per step instead of five
        passes over arrays of n values. y is clipped in place: y <= lo exactly where x * scale <= lo, y >= hi where
        x * scale >= hi (lo < hi), so the counts need no copy.
        """
        lo, hi = self.lo, self.hi
        y, mask = np.empty(min(AUTO_BLOCK, len(x))), np.empty(min(AUTO_BLOCK, len(x)), dtype=bool)
        total, at_lo, at_hi = 0.0, 0, 0
        for start in range(0, len(x), len(y)):
            block = x[start : start + len(y)]
            yb, mb = y[: len(block)], mask[: len(block)]
            total += np.clip(np.multiply(block, scale, out=yb), lo, hi, out=yb).sum()
            at_lo += np.count_nonzero(np.less_equal(yb, lo, out=mb))
            at_hi += np.count_nonzero(np.greater_equal(yb, hi, out=mb))
        return total, lo * at_lo + hi * at_hi

    def _evaluate(self, psi: np.ndarray, a: float, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """Return (z, q, a, free) for class log weights psi: z_i = sum_c A_ic psi_c, q its clipped softmax (in `out`).

        `a` is the guess of the log normalizer (the previous one: it moves little between iterations).
        """
        z = self.image_scratch[0]
        for images, cls, amount in self._chunks(self.cls, self.amount):
            # intp indices: numpy gathers by them twice as fast as by small integer types, cast included
            np.add.reduce(psi[cls.astype(np.intp)] * amount, axis=0, out=z[images])  # row by row: classes in order
        if self.log_prior is not None:  # q_i ∝ u_i exp(...): KL(q || u) = q . (log(n q) - log(n u)) in `_dual`
            z += self.log_prior
        return z, *self._clipped_softmax(z, a, out)

    def _imbalance(self, e: np.ndarray) -> float:
        """Return max/min over the classes of share_c / t_c for expected instances e: the stopping measure."""
        return (e / self.t).max() / (e / self.t).min()

    def _expected(self, q: np.ndarray) -> tuple[np.ndarray, float]:
        """Return e_c = sum_i q_i A_ic (share_c = e_c / sum(e)) and its imbalance.

        Neighbouring images add to 4 histograms in turn (code c + C * (image % 4)), summed at the end: a slab's first
        row holds mostly the most common class, and adds to one bin in a row wait for each other (15% slower).
        """
        lanes = 4
        e, part = np.zeros(lanes * self.n_classes), np.empty(lanes * self.n_classes)
        offset = np.arange(AUTO_SLAB) % lanes * self.n_classes
        for images, cls, amount in self._chunks(self.cls, self.amount):
            e += _histogram((cls + offset[: cls.shape[1]]).ravel(), (amount * q[images]).ravel(), part)
        e = e.reshape(lanes, self.n_classes).sum(0)
        return e, self._imbalance(e)

    def _covariance(self, q: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Return d e / d psi = Cov(A) weighted by q over the free images: clipped images do not move with psi.

        With x_ic = sqrt(q_i) A_ic, sum_i x_i x_i^T adds x_ic x_id for every pair of classes c <= d of an image: in each
        group's slab, the squares of the rows, then the products of row j with the rows below it (classes c < d), a few
        thousand images at a time so that they stay in cache.
        """
        n_classes = self.n_classes
        root = np.sqrt(np.multiply(q, free, out=self.image_scratch[1]), out=self.image_scratch[1])  # 0 if clipped
        upper, v = np.zeros(n_classes * n_classes), np.zeros(n_classes)  # upper: sum_i x_ic x_id for c <= d
        part, v_part = np.empty_like(upper), np.empty_like(v)  # the histograms of `_histogram`
        for images, slab_cls, amount in self._chunks(self.cls, self.amount):
            cls, x = slab_cls.astype(np.intp), amount * root[images]  # intp: the pair codes exceed a small type
            v += _histogram(cls.ravel(), (x * root[images]).ravel(), v_part)  # sum_i q_i A_i
            upper += _histogram(cls.ravel() * (n_classes + 1), (x * x).ravel(), part)
            for j in range(len(x) - 1):  # row j against the rows below it: classes c < d
                pair = cls[j + 1 :] + cls[j] * n_classes
                upper += _histogram(pair.ravel(), (x[j + 1 :] * x[j]).ravel(), part)
        upper = upper.reshape(n_classes, n_classes)
        m = upper + upper.T - np.diag(upper.diagonal())  # sum_i q_i A_i A_i^T
        mass = root @ root  # of the free images
        return m - np.outer(v, v) / mass if mass > 0 else m

    @staticmethod
    def _damped_step(h: np.ndarray, g: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray | None:
        """Return the Levenberg-Marquardt step d = -(H + mu I)^+ g, or None when even the full step predicts no gain.

        The pseudo-inverse works on the range of H: the dual Hessian has null vector 1 (adding a constant to phi changes
        nothing), and a direction that only moves images already at a bound has no curvature left. mu >= 0 is the
        smallest (bisection on log mu) that keeps every class' log weight change |d_c - center . d| within `radius`
        (trust region), so a class with little curvature (a rare class near the cap) takes a bounded step without
        holding back the others, as scaling the whole step would.
        """
        lam, vec = np.linalg.eigh(h)
        keep = lam > 1e-9 * max(lam.max(), 1e-300)
        lam, vec = lam[keep], vec[:, keep]
        g_eig = vec.T @ g

        def step(mu):
            d = -vec @ (g_eig / (lam + mu))
            return d, np.abs(d - center @ d).max()

        d, size = step(0.0)
        if -g @ d <= 1e-12:  # the decrease of the objective that a full step predicts (Newton decrement)
            return None
        if size > radius:
            mu_low, mu_high = 0.0, 2.0 * np.abs(g_eig).sum() / radius  # |d_c - center . d| <= 2 sum|g_eig| / mu
            for _ in range(50):
                mu = np.sqrt(mu_low * mu_high) if mu_low else 1e-12 * mu_high
                mu_low, mu_high = (mu, mu_high) if step(mu)[1] > radius else (mu_low, mu)
            d, size = step(mu_high)
            d *= min(1.0, radius / size)  # in case the bound is not monotone in mu
        return d

    @staticmethod
    def _line_search(
        x: np.ndarray,
        step: np.ndarray,
        slope: float,
        value: float,
        at: Callable[[np.ndarray], tuple[float, tuple]],
        center: np.ndarray,
        radius: float,
    ) -> tuple | None:
        """Backtracking (Armijo) line search from x along step; `at(x)` returns (objective, point). None: no descent.

        Returns (x + step taken, its objective, its point, next trust region): the next radius is at least twice the
        step if it was taken whole, else the step taken, and at most AUTO_MAX_STEP. `slope` is the directional
        derivative g . step, `value` the objective at x, `center` and `radius` as in `_damped_step`.
        """
        for halvings in range(30):
            trial, point = at(x + step)
            if trial <= value + 1e-4 * slope * 0.5**halvings:
                size = np.abs(step - center @ step).max()
                return x + step, trial, point, min(AUTO_MAX_STEP, size if halvings else max(radius, 2.0 * size))
            step = step * 0.5
        return None

    def _keep_best(self, imbalance: float, point: tuple) -> bool:
        """Keep `point` if it is the most balanced so far; return whether it cut the imbalance by AUTO_MIN_PROGRESS."""
        progress = imbalance < self.best * (1.0 - AUTO_MIN_PROGRESS)
        if imbalance < self.best:
            self.best, self.best_point = imbalance, point
        return progress

    def _dual(self, phi: np.ndarray, a: float, out: np.ndarray) -> tuple[float, tuple]:
        """Return (f, (z, q, a, free)) at phi: the dual f = q . z - KL(q || u) at the maximizing q (in `out`)."""
        z, q, a, free = self._evaluate(phi - self.t @ phi, a, out)
        log_nq = np.log(np.multiply(q, self.n, out=self.image_scratch[1]), out=self.image_scratch[1])
        return q @ z - q @ log_nq, (z, q, a, free)

    def _start(self, phi: np.ndarray, out: np.ndarray) -> tuple:
        """Return (phi, f, q, a, free, e, imbalance) at phi (q in `out`), `a` guessed for uniform sampling."""
        f, (_, q, a, free) = self._dual(phi, np.log(self.n), out)
        return phi, f, q, a, free, *self._expected(q)

    def _dual_newton(self) -> None:
        """Phase 1: damped Newton on the dual f(phi), keeping the most balanced iterate in `best_point`.

        It starts from uniform sampling (phi = 0). With one object per image the inverse-frequency weights
        phi_c = log(t_c / n_c) hit the targets exactly (zero gradient), so they are tried too: the answer unless a bound
        cuts them. Each step is phi <- phi - (H + mu I)^+ g with g_c = sum_i q_i (A_ic - t_c n_i) = e_c - t_c sum(e) and
        H = Cov_q(P A) over the free images (P = I - t 1^T), mu from the trust region, then a line search on f. It stops
        within AUTO_TOLERANCE, when f proves the targets out of reach, after AUTO_PATIENCE iterations without progress,
        or when no step decreases f.
        """
        n, t = self.n, self.t
        starts = [np.zeros(self.n_classes)] + ([np.log(t / self.counts)] if self.single_objects else [])
        points = []
        for phi in starts:  # each start's q in a buffer of its own
            points.append(self._start(phi, self._buffer(*(point[2] for point in points))))
        phi, f, q, a, free, e, imbalance = min(points, key=lambda point: point[-1])
        self.best, self.best_point = imbalance, (phi - t @ phi, q, a, free, e)
        stalled, radius = 0, AUTO_MAX_STEP
        projection = np.eye(self.n_classes) - t[:, None]  # B_i = P A_i: the constraint rows
        while self.iterations < AUTO_MAX_ITER and imbalance > AUTO_TOLERANCE and stalled < AUTO_PATIENCE:
            if self.log_prior is None and f < -np.log(
                self.hi * n
            ):  # out of reach: every q within the bounds has -KL(q || u) >= -log(cap) > f
                break
            g = e - t * e.sum()
            step = self._damped_step(projection @ self._covariance(q, free) @ projection.T, g, t, radius)
            dual = functools.partial(self._dual, a=a, out=self._buffer(q))  # the trials' q: one buffer, the last kept
            found = step is not None and self._line_search(phi, step, g @ step, f, dual, t, radius)
            if not found:
                break
            phi, f, (_, q, a, free), radius = found
            self.iterations += 1
            e, imbalance = self._expected(q)
            stalled = 0 if self._keep_best(imbalance, (phi - t @ phi, q, a, free, e)) else stalled + 1

    def _residual(self, e: np.ndarray) -> np.ndarray:
        """Return r_c = rho_c - mean(rho), rho_c = log(share_c / t_c): zero exactly when the shares hit the targets."""
        rho = np.log(e / (self.t * e.sum()))
        return rho - rho.mean()

    def _spread(self, psi: np.ndarray, a: float, out: np.ndarray) -> tuple[float, tuple]:
        """Return (|r|^2 / 2, (q, a, free, e, r)) at class log weights psi (q in `out`): phase 2's objective."""
        _, q, a, free = self._evaluate(psi, a, out)
        e = self._expected(q)[0]
        r = self._residual(e)
        return r @ r / 2, (q, a, free, e, r)

    def _share_gauss_newton(self) -> None:
        """Phase 2: Gauss-Newton on the share spread |r|^2 / 2 from the most balanced point so far.

        psi <- psi - (J^T J + mu I)^+ J^T r with J = d r / d psi from d e_c / d psi_d = Cov_q(A)_cd (`_covariance`),
        with the trust region and line search of phase 1: unlike the dual, the spread has a minimum when the targets are
        out of reach. It stops within AUTO_TOLERANCE, at AUTO_MAX_ITER iterations of both phases, after
        AUTO_PATIENCE iterations without progress, or when no step decreases the spread.
        """
        zeros = np.zeros(self.n_classes)  # psi has no constant to project out: the trust region is on psi itself
        psi, q, a, free, e = self.best_point
        r = self._residual(e)
        value, stalled, radius = r @ r / 2, 0, AUTO_MAX_STEP
        while self.iterations < AUTO_MAX_ITER and stalled < AUTO_PATIENCE:
            jac = self._covariance(q, free) / e[:, None]  # d log e_c / d psi_d
            jac -= e @ jac / e.sum()  # d log share_c / d psi_d
            jac -= jac.mean(0)  # d r_c / d psi_d
            g = jac.T @ r  # gradient of |r|^2 / 2
            step = self._damped_step(jac.T @ jac, g, zeros, radius)
            spread = functools.partial(self._spread, a=a, out=self._buffer(q))
            found = step is not None and self._line_search(psi, step, g @ step, value, spread, zeros, radius)
            if not found:
                break
            psi, value, (q, a, free, e, r), radius = found
            self.iterations += 1
            stalled = 0 if self._keep_best(self._imbalance(e), (psi, q, a, free, e)) else stalled + 1
            if self.best <= AUTO_TOLERANCE:
                break

    def _fixed_weights(self, total: np.ndarray, out: np.ndarray) -> Iterator[np.ndarray]:
        """Yield the mean, max, median and sum image weights (as the core computes them) from the slabs and `weights`.

        Each image's classes run down its slab column in weight order (the classes are renumbered in weight order), so
        the max is the last row; the median is the mean weight of the classes of the middle instances (`middle`). The
        weights are written to `out` (the sum to `total`; the instances per image of the mean go to `out` first, so that
        phase 3 needs one buffer less): each is used up before the next is yielded.
        """
        for i, cls, amount in self._chunks(self.cls, self.amount):
            np.add.reduce(self.weights[cls] * amount, axis=0, out=total[i])
            np.add.reduce(amount, axis=0, dtype=np.float64, out=out[i])
        yield np.divide(total, out, out=out)
        for i, cls in self._chunks(self.cls):
            out[i] = self.weights[cls[-1]]
        yield out
        for i, *_ in self._chunks():  # a few thousand images at a time: no temporaries of n values
            out[i] = 0.5 * (self.weights[self.middle[0, i]] + self.weights[self.middle[1, i]])
        yield out
        yield total

    def _fixed_candidates(self) -> np.ndarray:
        """Phase 3: return the most balanced of the best point's q and the fixed aggregations clipped to the bounds.

        So auto is never less balanced than the four fixed aggregations; with crowds of tied classes, the log-linear
        family can be hard to search.
        """
        best, q = self.best, self.best_point[1]
        log_w, shifted = self.image_scratch[0], self.image_scratch[1]
        total = self._buffer()
        for w in self._fixed_weights(total, out=log_w):
            np.log(w, out=log_w)
            if self.log_prior is not None:
                log_w += self.log_prior
            top = log_w.max()
            a = np.log(np.exp(np.subtract(log_w, top, out=shifted), out=shifted).sum()) + top
            q_fixed = self._clipped_softmax(log_w, a, self._buffer(q, total))[0]
            imbalance = self._expected(q_fixed)[1]
            if imbalance < best:
                best, q = imbalance, q_fixed
        return q
