"""dans's samplers inside PyKEEN's pipeline: by name, once `dans.pykeen` is imported, with a
SamplerCallback that hands the sampler PyKEEN's model (needs `pip install 'dans-kge[pykeen]'`).

    python examples/pykeen_samplers.py [--epochs 20]
"""

import argparse

from pykeen.pipeline import pipeline

import dans.pykeen as bridge


def main(epochs: int) -> None:
    for sampler in ("basic", "nscaching", "dans"):  # PyKEEN's uniform, then two of dans's
        result = pipeline(
            dataset="Nations",
            model="DistMult",
            model_kwargs={"embedding_dim": 32},
            negative_sampler=sampler,
            negative_sampler_kwargs={"num_negs_per_pos": 8},
            training_kwargs={
                "num_epochs": epochs,
                "batch_size": 256,
                "callbacks": [bridge.SamplerCallback()],
                "use_tqdm": False,
            },
            evaluation_kwargs={"use_tqdm": False, "batch_size": 256},
            random_seed=1,
            device="cpu",
        )
        print(f"{sampler}: MRR {result.metric_results.get_metric('mrr'):.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    main(parser.parse_args().epochs)
