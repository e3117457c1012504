"""Closed-loop optimisation of iPSC-to-RPE differentiation on a simulated LabDroid Maholo: the
eLife 2022 workflow (Kanda et al., https://elifesciences.org/articles/77007) on a laptop.

An optimiser (Optuna's TPE sampler) proposes the seven protocol parameters; each trial runs the
40-day RPE protocol on the simulated Maholo at max speed as a batch of its own (a sealed batch
record per trial); the day-34 pigmentation score feeds back. At the end it plots the best score
by trial. The simulator's response surface is assumed (plausible and noisy), not the paper's.

    python examples/maholo_optimise.py [TRIALS]     # default 12; needs the `optimise` extra
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import optuna

import cellauto
from cellauto.profiles import load_profile

PROGRAM = "iPSC-RPE differentiation"
OPTIMISED = (
    "preconditioning_concentration",
    "preconditioning_period",
    "trypsin_period",
    "pipetting_strength",
    "pipetting_length",
    "ksr_reduction_period",
    "chemical_supplement_period",
)


async def run_trial(number: int, values: dict[str, float]) -> float:
    """One RPE protocol run with `values`, recorded as batch RPE-OPT-<number>."""
    template = load_profile("maholo").program(PROGRAM)
    units = {p.name: p.unit or "1" for p in template.parameters}
    async with cellauto.Batch(
        f"RPE-OPT-{number:03d}",
        product="iPSC-derived RPE (simulated)",
        operator="optimiser",
        sim=True,
        seed=number,
    ) as batch:
        maholo = await batch.connect("maholo+http://maholo.lab.local:8080")
        params = {name: cellauto.Q(value, units[name]) for name, value in values.items()}
        result = await (await maholo.start_program(PROGRAM, params))
        score = result.properties["pigmentation_score"]
        assert isinstance(score, cellauto.Quantity)
        batch.release("optimisation trial")
    return float(score.value)


def main(trials: int) -> None:
    logging.getLogger("optuna").setLevel(logging.WARNING)
    template = load_profile("maholo").program(PROGRAM)
    specs = {p.name: p for p in template.parameters}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=1))

    def objective(trial: optuna.Trial) -> float:
        values = {}
        for name in OPTIMISED:
            spec = specs[name]
            low, high = spec.minimum, spec.maximum
            if low is None or high is None:
                raise ValueError(f"the profile gives {name} no range to search")
            values[name] = trial.suggest_float(name, low, high)
        score = asyncio.run(run_trial(trial.number + 1, values))
        print(f"trial {trial.number + 1:3d}: pigmentation score {score:6.2f} %")
        return score

    study.optimize(objective, n_trials=trials)
    print(f"best: {study.best_value:.2f} % in trial {study.best_trial.number + 1}")
    for name, value in study.best_params.items():
        print(f"  {name:28} {value:8.2f} {specs[name].unit}")
    plot([t.value for t in study.trials if t.value is not None], Path("maholo_optimise.png"))


def plot(scores: list[float], path: Path) -> None:
    """The best score so far by trial, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = [max(scores[: n + 1]) for n in range(len(scores))]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(range(1, len(scores) + 1), scores, "o", color="0.6", label="trial")
    axes.step(range(1, len(best) + 1), best, where="post", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel("pigmented area (%)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    print(f"plot: {path}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
