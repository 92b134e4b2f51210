"""The model: BERTGRUSentiment (encoder + BiGRU head), its CPU GRU kernels, running the encoder in
two parts, the saved model folder and prediction from it. No training, no tracking.
"""
