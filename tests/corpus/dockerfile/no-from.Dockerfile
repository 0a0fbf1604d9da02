RUN echo before from
ENV A=1 B
ARG
