# The inference function as a container image (preheat.lambda.package = "image"): the same runtime,
# model and dependencies as the zip + layers variant, from the same build outputs.
# Build context: the repository root; CDK stages only functions/, the two layer directories and this file.
FROM public.ecr.aws/lambda/python:3.12
ARG DEPS_LAYER=build/layers/deps-x86_64
ARG MODEL_LAYER=build/layers/model
COPY ${DEPS_LAYER}/python/ ${LAMBDA_TASK_ROOT}/
COPY ${MODEL_LAYER}/model/ /opt/model/
COPY functions/ ${LAMBDA_TASK_ROOT}/functions/
CMD ["functions.inference.handler.handler"]
