"""The textbook frozen-backbone fine-tune that benchmarks/train.py compares phonegrade with.

torchvision model, its lower layers frozen (requires_grad off, BatchNorm in eval mode), a new Linear classifier,
ImageFolder + DataLoader, AdamW, cross-entropy; every epoch every image goes through the whole network, then
the validation images do. Prints one JSON line: the seconds of each epoch (training + validation).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torchvision
from torch import nn
from torchvision import transforms

# The same frozen / trainable split as phonegrade's defaults for pretrained backbones.
FROZEN = {
    "mobilenet_v2": lambda m: [m.features[:14]],                                   # top 5 of 19 blocks train
    "resnet50": lambda m: [m.conv1, m.bn1, m.layer1, m.layer2, m.layer3],          # layer4 trains
}
CLASSIFIER = {"mobilenet_v2": ("classifier", 1280), "resnet50": ("fc", 2048)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--arch", choices=sorted(FROZEN), required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = getattr(torchvision.models, args.arch)(weights=None)
    name, width = CLASSIFIER[args.arch]
    setattr(model, name, nn.Linear(width, 3))
    frozen = FROZEN[args.arch](model)
    for part in frozen:
        part.requires_grad_(False)
    transform = transforms.Compose([transforms.Resize((args.image_size, args.image_size)), transforms.ToTensor(),
                                    transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    train = torch.utils.data.DataLoader(torchvision.datasets.ImageFolder(f"{args.data}/train", transform),
                                        batch_size=args.batch_size, shuffle=True, num_workers=args.workers)
    val = torch.utils.data.DataLoader(torchvision.datasets.ImageFolder(f"{args.data}/val", transform),
                                      batch_size=args.batch_size, num_workers=args.workers)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-4)

    seconds = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        model.train()
        for part in frozen:
            part.eval()  # frozen layers keep their BatchNorm statistics
        for images, labels in train:
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for images, labels in val:
                nn.functional.cross_entropy(model(images), labels)
        seconds.append(time.perf_counter() - started)
    print(json.dumps({"epoch_seconds": seconds}))


if __name__ == "__main__":
    main()
