FROM busybox
RUN echo a \
# a comment inside

  && echo b \
   
  && echo c
USER 1000
