# ultralytics-weighted, AGPL-3.0 license
"""balance_agg=auto: the probabilities closest to uniform whose expected class shares hit the targets (an extension).

The fixed aggregations (mean, max, median, sum) are the core's (`balance.py`); this module solves for the image
probabilities instead, and is used by the plugin's `weighted_probabilities` for `balance_agg=auto`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from ..core.balance import inverse_frequency_weights
from .auto_slabs import SlabPasses

# balance_agg=auto: solved probabilities (see `AutoSolver`)
AUTO_TOLERANCE = 1.02  # stop once max/min over classes of (expected share / target share) is at most this
AUTO_MIN_DRAWS = 0.02  # floor of expected draws per epoch N * p_i of every labelled image: nothing drops out
AUTO_MAX_DRAWS = 10.0  # cap of expected draws per epoch N * p_i: more draws of one image mostly feed memorization
AUTO_MAX_ITER = 30  # Newton iterations at most, both phases together (reachable targets take fewer than 10)
AUTO_MAX_STEP = 2.0  # largest change of one class' log weight per Newton iteration (trust region)
AUTO_MIN_PROGRESS, AUTO_PATIENCE = 0.01, 2  # stop after 2 iterations that do not cut the imbalance by 1% more
AUTO_BLAS_THREADS = 1  # BLAS threads of the solver, whatever the environment says (see `AutoSolver.solve`)


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


class AutoSolver(SlabPasses):
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
