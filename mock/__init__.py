"""A local stand-in for paid prediction APIs, serving a real ImageNet model (``barapi[mock]``)."""
