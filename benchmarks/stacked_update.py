"""Hypothesis 6 of the first-minute issue, measured on a model of the update before any change
to the library: pi and v with stacked torso parameters.

    python benchmarks/stacked_update.py [--updates 2000] [--rounds 5]

Both layouts compute the same thing: pi and v are MLPs of the same torso shape (CartPole:
4 -> 64 -> 64, tanh; heads 2 logits and 1 value), v's TD error on n-step targets and pi's
policy gradient weighted by it with an entropy bonus, then Adam on each network. "separate"
keeps two parameter trees and two products per layer, as purea2c does; "stacked" keeps each
torso layer as one [2, in, out] array and computes both networks' layer in one batched
product (``einsum``), with one backward pass. Each is one jitted scan of ``--updates``
updates, timed after its compile, for the two batch sizes that matter: 40 (SB3's schedule,
where kernel launches weigh most) and 256 (the defaults). Rounds alternate the layouts.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from purea2c import training

OBS, HIDDEN, ACTIONS = 4, (64, 64), 2


def init(key: jax.Array, stacked: bool) -> dict:
    sizes = (OBS, *HIDDEN)
    keys = iter(jax.random.split(key, 2 * len(sizes) + 2))
    torso = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        w = jnp.stack([jax.random.normal(next(keys), (a, b)) / jnp.sqrt(a) for _ in range(2)])
        torso.append((w, jnp.zeros((2, b))))
    if not stacked:  # two trees: pi's layers and v's layers
        torso = [[(w[i], b[i]) for w, b in torso] for i in range(2)]
    heads = {"pi": (0.01 * jax.random.normal(next(keys), (HIDDEN[-1], ACTIONS)),
                    jnp.zeros(ACTIONS)),
             "v": (jax.random.normal(next(keys), (HIDDEN[-1], 1)), jnp.zeros(1))}
    return {"torso": torso, "heads": heads}


def features(params: dict, obs: jax.Array, stacked: bool) -> tuple[jax.Array, jax.Array]:
    if stacked:
        x = jnp.broadcast_to(obs, (2, *obs.shape))
        for w, b in params["torso"]:
            x = jnp.tanh(jnp.einsum("kbi,kio->kbo", x, w) + b[:, None])
        return x[0], x[1]
    out = []
    for layers in params["torso"]:
        x = obs
        for w, b in layers:
            x = jnp.tanh(x @ w + b)
        out.append(x)
    return out[0], out[1]


def loss(params: dict, batch: tuple, stacked: bool) -> jax.Array:
    obs, action, target = batch
    h_pi, h_v = features(params, obs, stacked)
    value = (h_v @ params["heads"]["v"][0] + params["heads"]["v"][1])[:, 0]
    td = target - value
    logits = h_pi @ params["heads"]["pi"][0] + params["heads"]["pi"][1]
    logp = jax.nn.log_softmax(logits)
    entropy = -jnp.sum(jnp.exp(logp) * logp, -1)
    chosen = jnp.take_along_axis(logp, action[:, None], -1)[:, 0]
    pg = -jnp.mean(jax.lax.stop_gradient(td) * chosen) - 0.01 * jnp.mean(entropy)
    return 0.5 * jnp.mean(td ** 2) + pg


def program(stacked: bool, batch_size: int, updates: int):
    opt = optax.flatten(optax.chain(optax.clip_by_global_norm(0.5), optax.adam(7e-4)))

    def step(carry, key):
        params, opt_state = carry
        k1, k2, k3 = jax.random.split(key, 3)
        batch = (jax.random.normal(k1, (batch_size, OBS)),
                 jax.random.randint(k2, (batch_size,), 0, ACTIONS),
                 jax.random.normal(k3, (batch_size,)))
        grads = jax.grad(loss)(params, batch, stacked)
        upd, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, upd), opt_state), None

    def run(key):
        params = init(key, stacked)
        carry, _ = jax.lax.scan(step, (params, opt.init(params)),
                                jax.random.split(key, updates))
        return carry[0]

    return jax.jit(run, compiler_options=training.compiler_options())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {jax.devices()[0].device_kind}, {args.updates} updates a "
          f"call, medians of {args.rounds} alternating rounds")
    key = jax.random.key(0)  # the two layouts compute the same loss from the same draw
    batch = (jax.random.normal(key, (8, OBS)), jnp.arange(8) % ACTIONS, jnp.ones(8))
    same = [float(loss(init(key, s), batch, s)) for s in (False, True)]
    assert abs(same[0] - same[1]) < 1e-5, same
    for batch_size in (40, 256):
        fns = {name: program(name == "stacked", batch_size, args.updates)
               for name in ("separate", "stacked")}
        times: dict[str, list[float]] = {name: [] for name in fns}
        for name, fn in fns.items():  # compile
            jax.block_until_ready(fn(jax.random.key(0)))
        for r in range(args.rounds):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                jax.block_until_ready(fn(jax.random.key(r)))
                times[name].append(time.perf_counter() - t0)
        med = {name: statistics.median(t) / args.updates * 1e6 for name, t in times.items()}
        print(f"batch {batch_size}: separate {med['separate']:.1f} µs/update, stacked "
              f"{med['stacked']:.1f} µs/update: stacked/separate "
              f"{med['stacked'] / med['separate']:.3f}")


if __name__ == "__main__":
    main()
