from django.urls import include, path

from tests.client import views

polls = ([path("detail/", views.ten_metrics, name="detail")], "polls")

urlpatterns = [
    path("ten/", views.ten_metrics, name="ten"),
    path("unnamed/", views.unnamed),
    path("class/", views.ClassView.as_view()),
    path("ns/", include(polls)),
    path("not-found/", views.not_found, name="not_found"),
    path("forbidden/", views.forbidden, name="forbidden"),
    path("boom/", views.boom, name="boom"),
    path("db/", views.with_queries, name="db"),
    path("stream/", views.streaming, name="stream"),
    path("async/", views.async_view, name="async"),
    path("async-stream/", views.async_streaming, name="async_stream"),
]
