"""Simulated data sets with a known truth and the clustering of the real artifacts: pairs
nested in personas and crossed with prompts (shared base answer y_l / shared question).

A sample's outcome is 1{z_persona + w_prompt + u_pair + e_sample > c}, with independent normal
terms whose variances sum to one, so P(outcome) = 1 - Phi(c) exactly: the planted truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Design:
    personas: int = 40
    prompts: int = 40
    pairs_per_persona: int = 20
    samples_per_pair: int = 1
    persona_var: float = 0.2  # latent variance of the persona effect
    prompt_var: float = 0.1  # latent variance of the shared-prompt effect
    pair_var: float = 0.0  # latent variance shared by the samples of one pair

    @property
    def shared_var(self) -> float:
        """Latent correlation of two samples of one pair."""
        return self.persona_var + self.prompt_var + self.pair_var


@dataclass(frozen=True)
class DataSet:
    persona: npt.NDArray[np.int64]  # one per pair
    prompt: npt.NDArray[np.int64]  # one per pair
    latent: Floats  # pairs x samples, standard normal margins

    def successes(self, rate: float) -> Floats:
        """Per pair: samples whose outcome is 1 when the population rate is `rate`."""
        passed = self.latent > norm.ppf(1.0 - rate)
        result: Floats = passed.sum(axis=1).astype(np.float64)
        return result

    @property
    def trials(self) -> Floats:
        return np.full(self.latent.shape[0], float(self.latent.shape[1]))


def simulate(design: Design, rng: np.random.Generator) -> DataSet:
    """One data set: each persona answers `pairs_per_persona` distinct prompts."""
    d = design
    noise_var = 1.0 - d.shared_var
    assert noise_var > 0
    persona = np.repeat(np.arange(d.personas), d.pairs_per_persona)
    prompt = np.concatenate(
        [rng.choice(d.prompts, size=d.pairs_per_persona, replace=False) for _ in range(d.personas)]
    )
    z = rng.normal(0.0, np.sqrt(d.persona_var), d.personas)[persona]
    w = rng.normal(0.0, np.sqrt(d.prompt_var), d.prompts)[prompt]
    u = rng.normal(0.0, np.sqrt(d.pair_var), persona.size)
    e = rng.normal(0.0, np.sqrt(noise_var), (persona.size, d.samples_per_pair))
    return DataSet(persona, prompt, (z + w + u)[:, None] + e)
