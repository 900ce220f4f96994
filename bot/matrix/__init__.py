"""Matrix: the bot and job reports (``MatrixPlatform``) and Slurm notifications
(``MatrixConnector``), both through matrix-nio."""

from bot.matrix.client import MatrixConnector
from bot.matrix.platform import MatrixPlatform

__all__ = ["MatrixConnector", "MatrixPlatform"]
