config = {
    "model": {"widths": [8, 16, 32], "neck": 32, "num_classes": 5},
    "train": {"batch_size": 4, "image_size": 32, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
}
