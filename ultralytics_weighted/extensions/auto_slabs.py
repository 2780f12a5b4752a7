# ultralytics-weighted, AGPL-3.0 license
"""The passes of balance_agg=auto's solver over the labels, held as dense slabs of (image, class, count) triples.

`AutoSolver` (auto.py) is the solver: its problem, phases and stopping rules. This module is how it reads the labels
fast: the layout of the sparse label matrix A in cache-sized slabs (`_triples`, `_layout`), and the vectorized passes
every iteration makes over it (log weights, clipped softmax, expected class counts, their covariance, and the fixed
aggregations for phase 3). Numpy only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

AUTO_SLAB = 1 << 14  # images per slab at most (`SlabPasses._layout`): one slab's temporaries stay small
AUTO_BLOCK = 1 << 16  # images per block of `SlabPasses._clipped_total`: 512 KB of float64 temporaries stay in cache


def _histogram(codes: np.ndarray, weights: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Return `out` set to np.bincount(codes, weights, len(out)), the same sums in the same order, but faster.

    np.add.at (numpy >= 1.25) adds in place without np.bincount's pass for the minimum and maximum code and without a
    fresh histogram per call; `codes` must lie in [0, len(out)). Small integer codes are cast to intp first: np.add.at
    adds intp indices 15% faster than it converts others one by one.
    """
    out.fill(0.0)
    np.add.at(out, codes.astype(np.intp, copy=False), weights)
    return out


class SlabPasses:
    """The passes over the label slabs that `AutoSolver` is built on (a base class: it holds no state of its own).

    `AutoSolver.__init__` sets what these methods read: n, n_classes, chunk, t, weights, lo, hi, groups, cls, amount,
    middle, log_prior, image_scratch, buffers and best_point (see `AutoSolver`'s attributes).
    """

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
