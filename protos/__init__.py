"""The gRPC contracts (`*.proto`) and the stubs the build generates from them (git-ignored).

Generate with, from the repository root:

    python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. protos/*.proto

Compiling with `-I.` and the `protos/` prefix makes the generated `*_pb2_grpc.py` import
`from protos import inventory_pb2`, so the stubs are importable as `protos.inventory_pb2`.
"""
