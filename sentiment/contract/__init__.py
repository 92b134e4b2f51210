"""The data contract: what every IMDB split must satisfy (Great Expectations 1.x), read at the
raw level so unusable bytes become failed checks, and the validation report.
"""
