FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
# Pass PyTorch's CPU wheel index as PIP_EXTRA_INDEX_URL to keep the image free of CUDA.
ARG PIP_EXTRA_INDEX_URL=
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV DJANGO_SETTINGS_MODULE=kms.settings
