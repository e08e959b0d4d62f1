"""The SageMaker container: `serve` (the same FastAPI app under uvicorn on port 8080), the settings
SageMaker's environment gives it, and the one typed description of a serverless endpoint that the
CDK construct, the SageMaker Python SDK path and the local twin all build from."""
