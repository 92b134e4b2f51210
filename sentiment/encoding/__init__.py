"""Text to encoder inputs: which BERT-family encoder and tokenizer, review → token ids with the
homework's truncation (cached with HF `datasets`), and the preprocessing spec saved beside a
model.
"""
