"""Reading and writing files: audio decoding, pairing gt with predictions, length policies, output
checks, atomic writes, the content-hash cache, restricted unpickling and provenance files.
"""
