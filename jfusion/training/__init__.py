"""Training: the generic optax loop (:mod:`.loop`), orbax checkpoints, one config per model."""

from jfusion.training.loop import TrainResult, cross_entropy_loss, make_train_step, train

__all__ = ["TrainResult", "cross_entropy_loss", "make_train_step", "train"]
