"""Prints the model variants with their parameter counts and GFLOPs per megapixel.

    python -m qgac_jax.models
"""

from qgac_jax.models import VARIANTS, create_model, model_stats


def main() -> None:
    print("| variant | channels | widths | blocks | params | GFLOP/MP (forward) |")
    print("|---|---|---|---|---|---|")
    for name, spec in VARIANTS.items():
        for channels in (3, 1):
            stats = model_stats(create_model(name, channels=channels))
            widths = ", ".join(map(str, spec["widths"]))
            print(
                f"| {name} | {channels} | {widths} | {spec['blocks']} | "
                f"{stats['params'] / 1e6:.2f} M | {stats['gflops_per_mp']:.1f} |"
            )


if __name__ == "__main__":
    main()
