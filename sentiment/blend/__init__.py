"""The blended model: the encoder + GRU model and the bag-of-words model combined by a logistic
stacker over their two logits, fitted on the validation split only. Saved inside the model
folder as plain files (JSON, safetensors), so one registered version holds both parts.
"""
