"""What the tagger stand-in knows before any program (bench/harness/cells.py): its eight style tags
summed into T-shirt/top and Shirt, no training image and no readout, on the first 600 of the
task's 2,000 test images — sent whole (the image fills the input, as the tagger's own images did)
and embedded in the 224 px canvas at 192 px and at the default 112 px, grey around.

    python bench/tagger_tags.py          # about a minute on 2 cores; writes results/tagger_tags.md
"""

from __future__ import annotations

import time

import numpy as np
from harness.cells import SPLIT_SEED, TASKS, TRAIN_PER_CLASS, VALUE_TEST_SIZE, WORK, served_model
from harness.results import RESULTS

from barapi.data import load_split
from barapi.method.program import encode_png
from barapi.mock.model import ImageNetModel

IMAGES, CANVAS, SIZES = 600, 224, (None, 192, 112)  # None: the image fills the input


def tags_alone(network: ImageNetModel, size: int | None) -> float:
    split = load_split(TASKS["tshirt-shirt"], embed_size=size or network.size, train_per_class=TRAIN_PER_CLASS, test_size=VALUE_TEST_SIZE,
                       seed=SPLIT_SEED)
    images, labels = split.x_test[:IMAGES], split.y_test[:IMAGES]
    if size is not None:
        canvas = np.zeros((len(images), CANVAS, CANVAS, 3))
        offset = (CANVAS - size) // 2
        canvas[:, offset : offset + size, offset : offset + size] = images
        images = canvas
    tags = served_model("tagger", network).scores(np.concatenate([network.classify([encode_png(image) for image in images[i : i + 32]])
                                                                  for i in range(0, len(images), 32)]))
    half = tags.shape[1] // 2  # the tee styles first, then the shirt styles
    return float(np.mean((tags[:, half:].sum(axis=1) > tags[:, :half].sum(axis=1)) == labels))


def main() -> None:
    network = ImageNetModel(home=WORK / "home", threads=2)
    lines = ["# The tagger's tags alone", "", f"`python bench/tagger_tags.py`, {time.strftime('%Y-%m-%d')}: T-shirt/Shirt read by summing the "
             f"tagger's four style tags of each class, the first {IMAGES} of bench/value.py's test images, no readout.", "",
             "| the target sent | accuracy |", "|---|---|"]
    for size in SIZES:
        lines.append(f"| {'whole (fills the input)' if size is None else f'{size} px in the {CANVAS} px canvas'} | {100 * tags_alone(network, size):.1f} |")
        print(lines[-1], flush=True)
    (RESULTS / "tagger_tags.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
